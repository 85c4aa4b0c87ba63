"""Perspective views that cover the whole sphere, and the mapping between them and the equirect.

A depth model sees the panorama through ``sphere_views``: overlapping square pinhole views
(default 18 of 100°: a ring of 8 on the horizon, rings of 4 at +-50° latitude, one straight up, one
straight down), so that every direction, poles included, is seen by at least one view and most
directions by two or more, which is what the global alignment needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry.equirect import equirect_to_perspective, look_rotation
from ..types import Camera

RINGS: tuple[tuple[float, int, float], ...] = (
    (0.0, 8, 0.0),
    (50.0, 4, 45.0),
    (-50.0, 4, 45.0),
    (90.0, 1, 0.0),
    (-90.0, 1, 0.0),
)
"""(latitude of the view axes in degrees, number of views, longitude of the first view in degrees)."""


def sphere_views(size: int, fov_deg: float = 100.0) -> list[Camera]:
    """Square pinhole cameras at the origin whose views cover the sphere (see :data:`RINGS`).

    Args:
        size: width = height of each view, pixels.
        fov_deg: field of view of each view, degrees; 90 or more leaves no gap.

    Returns:
        The cameras, horizon ring first (the first looks forward, -Z).
    """
    if size < 8:
        raise InputError(f"view size {size} must be at least 8 pixels")
    if not 90.0 <= fov_deg < 170.0:
        raise InputError(f"view field of view {fov_deg}° must lie in [90, 170): narrower views leave gaps")
    cams = []
    for lat_deg, count, lon0 in RINGS:
        lat = math.radians(lat_deg)
        for k in range(count):
            lon = math.radians(lon0 + 360.0 * k / count)
            fwd = np.array([math.cos(lat) * math.sin(lon), math.sin(lat), -math.cos(lat) * math.cos(lon)])
            # at the poles pick the "up" that keeps the forward meridian at the top of the view
            up = (
                np.array([0.0, 0.0, -1.0])
                if lat_deg >= 89.9
                else np.array([0.0, 0.0, 1.0])
                if lat_deg <= -89.9
                else np.array([0.0, 1.0, 0.0])
            )
            m = np.eye(4)
            m[:3, :3] = look_rotation(fwd, up)
            cams.append(Camera.perspective(size, size, fov_deg, m))
    return cams


def cut_views(image: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """Perspective views of a panorama. image [H, 2H, C] -> [N, size, size, C] float32 (bilinear)."""
    return np.stack([equirect_to_perspective(image, cam, "bilinear") for cam in cameras]).astype(np.float32)


def ray_length(camera: Camera) -> np.ndarray:
    """|(x, y, 1)| per pixel of a pinhole view: Euclidean ray distance = z-depth x this. [h, w] float32"""
    u = (np.arange(camera.width, dtype=np.float64) + 0.5 - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) + 0.5 - camera.cy) / camera.fy
    return np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2).astype(np.float32)


@dataclass(frozen=True)
class Projection:
    """Where directions land in one view.

    Args:
        index: flat indices (into the directions given) of those inside the view. [M] int64
        px, py: continuous view coordinates of those directions (pixel centres at +0.5). [M] float32
        edge: distance to the nearest view border over half the view size, in (0, 1]. [M] float32
    """

    index: np.ndarray
    px: np.ndarray
    py: np.ndarray
    edge: np.ndarray


def project(dirs: np.ndarray, camera: Camera, offset: int = 0) -> Projection:
    """Project unit directions into a pinhole view (the camera's rotation only).

    Args:
        dirs: unit directions, world frame. [M, 3] (float32 is fastest)
        camera: a perspective camera.
        offset: added to the returned indices (when ``dirs`` is a slice of a larger array).
    """
    r = camera.cam_to_world[:3, :3].astype(dirs.dtype)
    d0, d1, d2 = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    # camera-frame coordinates: local = dirs @ R (the rotation's inverse is its transpose)
    z = -(d0 * r[0, 2] + d1 * r[1, 2] + d2 * r[2, 2])
    front = z > 1e-6
    inv_z = 1.0 / np.where(front, z, 1.0)
    px = camera.cx + camera.fx * (d0 * r[0, 0] + d1 * r[1, 0] + d2 * r[2, 0]) * inv_z
    py = camera.cy - camera.fy * (d0 * r[0, 1] + d1 * r[1, 1] + d2 * r[2, 1]) * inv_z
    inside = front & (px >= 0) & (px <= camera.width) & (py >= 0) & (py <= camera.height)
    idx = np.flatnonzero(inside)
    px, py = px[idx], py[idx]
    half = 0.5 * min(camera.width, camera.height)
    edge = np.minimum(np.minimum(px, camera.width - px), np.minimum(py, camera.height - py)) / half
    return Projection(
        idx + offset, px.astype(np.float32), py.astype(np.float32), np.clip(edge, 1e-6, 1.0).astype(np.float32)
    )


def sample_view(view: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Bilinear samples of a view [h, w] at continuous coordinates (clamped at the borders). [M] float32"""
    v00, v01, v10, v11, tx, ty = _bilinear_corners(view, px, py)
    return ((v00 * (1 - tx) + v01 * tx) * (1 - ty) + (v10 * (1 - tx) + v11 * tx) * ty).astype(np.float32)


def _bilinear_corners(view: np.ndarray, px: np.ndarray, py: np.ndarray):
    """The four neighbours of each continuous coordinate (pixel centres at +0.5, clamped at the
    borders) and the fractional offsets: (v00, v01, v10, v11, tx, ty), each [M]."""
    h, w = view.shape
    xf = np.clip(px - 0.5, 0, w - 1)
    yf = np.clip(py - 0.5, 0, h - 1)
    c0 = np.minimum(xf.astype(np.int64), max(w - 2, 0))
    r0 = np.minimum(yf.astype(np.int64), max(h - 2, 0))
    c1 = np.minimum(c0 + 1, w - 1)
    r1 = np.minimum(r0 + 1, h - 1)
    return view[r0, c0], view[r0, c1], view[r1, c0], view[r1, c1], xf - c0, yf - r0


def sample_view_edges(view: np.ndarray, px: np.ndarray, py: np.ndarray, jump: float = 0.05) -> np.ndarray:
    """Bilinear samples of a positive map, but the nearest pixel where the four neighbours differ by
    more than ``jump`` (relative), or one is NaN: across a depth edge a blend is a surface that does
    not exist. NaN marks invalid pixels; a NaN nearest pixel gives NaN. [M] float32"""
    h, w = view.shape
    v00, v01, v10, v11, tx, ty = _bilinear_corners(view, px, py)
    out = (v00 * (1 - tx) + v01 * tx) * (1 - ty) + (v10 * (1 - tx) + v11 * tx) * ty
    lo = np.minimum(np.minimum(v00, v01), np.minimum(v10, v11))
    hi = np.maximum(np.maximum(v00, v01), np.maximum(v10, v11))
    edge = ~(hi - lo <= jump * np.abs(hi))  # NaN neighbours (invalid pixels) count as an edge
    if edge.any():
        near = view[np.clip(py[edge].astype(np.int64), 0, h - 1), np.clip(px[edge].astype(np.int64), 0, w - 1)]
        out[edge] = near
    return out.astype(np.float32)


def sample_view_nearest(view: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Nearest samples of a view [h, w] (for masks). [M]"""
    h, w = view.shape
    return view[np.clip(py.astype(np.int64), 0, h - 1), np.clip(px.astype(np.int64), 0, w - 1)]


def view_rows(camera: Camera, height: int) -> slice:
    """Equirect rows (of an H x 2H panorama) a view can reach: a cheap bound from its axis and diagonal."""
    fwd = -camera.cam_to_world[:3, 2]
    lat = math.asin(float(np.clip(fwd[1], -1.0, 1.0)))
    half_diag = math.atan(math.hypot(camera.width / 2 / camera.fx, camera.height / 2 / camera.fy))
    top = math.pi / 2 - min(lat + half_diag, math.pi / 2)
    bottom = math.pi / 2 - max(lat - half_diag, -math.pi / 2)
    r0 = max(0, int(math.floor(top / math.pi * height)) - 1)
    r1 = min(height, int(math.ceil(bottom / math.pi * height)) + 1)
    return slice(r0, r1)


__all__ = [
    "RINGS",
    "Projection",
    "cut_views",
    "project",
    "ray_length",
    "sample_view",
    "sample_view_edges",
    "sample_view_nearest",
    "sphere_views",
    "view_rows",
]
