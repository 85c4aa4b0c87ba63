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


def surface_links(view: np.ndarray, jump: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Which neighbouring pixels of an inverse-depth view lie on one surface.

    Inverse z-depth is affine in the image coordinates on any plane, so a link between two pixels
    is a surface (not a depth edge) when its step matches the step on either side of it (a plane,
    however steep: the ground near the horizon changes by far more than 5 % per pixel, but
    linearly) or is itself small. A link to an invalid (NaN) pixel is never a surface.

    Args:
        view: inverse depth (or any map affine on planes), NaN on invalid pixels. [h, w]
        jump: tolerance, relative to the larger of the two values.

    Returns:
        (right, down): right[r, c] links (r, c)-(r, c+1) [h, w-1]; down[r, c] links (r, c)-(r+1, c)
        [h-1, w]. bool
    """

    def along(v):
        d = v[:, 1:] - v[:, :-1]
        tol = jump * np.maximum(np.abs(v[:, 1:]), np.abs(v[:, :-1]))
        dev = np.full(d.shape, np.inf, np.float32)
        if d.shape[1] > 1:
            dd = np.abs(np.diff(d, axis=1))  # dd[:, c] = |d[c+1] - d[c]|
            dd = np.where(np.isfinite(dd), dd, np.inf)
            dev[:, 1:] = dd
            dev[:, :-1] = np.minimum(dev[:, :-1], dd)
        with np.errstate(invalid="ignore"):
            return np.isfinite(d) & ((np.abs(d) <= tol) | (dev <= tol))

    return along(view), along(view.T).T


def sample_view_edges(
    view: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    jump: float = 0.05,
    links=None,
    front_weight: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware samples of an inverse-depth view: bilinear within a surface, never across a depth edge.

    Where the four neighbours of a coordinate are one surface (:func:`surface_links`), the sample
    is bilinear: exact on planes, including the ground near the horizon, where the nearest pixel
    alone would be off by a whole pixel's depth range. Where a depth edge cuts the cell, only the
    neighbours of one side are blended (bilinear weights, renormalised), since a blend across the
    edge is a surface that does not exist. The side is the nearer (front) surface when its
    neighbours carry at least ``front_weight`` of the bilinear weight, else the side of the nearest
    neighbour: where the edge falls inside the cell is unknown, and a thin pole or trunk sampled
    as background vanishes (a relative error of the depth ratio, 20x against a far hill), while a
    background pixel sampled as the front is off by less than 100 %. A NaN chosen side gives NaN
    (invalid stays invalid).

    Args:
        view: inverse depth, NaN on invalid pixels. [h, w]
        px, py: continuous view coordinates (pixel centres at +0.5). [M]
        jump: see :func:`surface_links`.
        links: precomputed ``surface_links(view, jump)``, or None.
        front_weight: bilinear weight the front side needs to win an edge cell (0.25: the front
            takes about half a pixel beyond its last pixel centre; 1 = always the nearest side).

    Returns:
        (values [M] float32, cut [M] bool: the four neighbours were not all one surface).
    """
    h, w = view.shape
    if h < 2 or w < 2:
        return sample_view_nearest(view, px, py).astype(np.float32), np.zeros(len(px), bool)
    right, down = links if links is not None else surface_links(view, jump)
    xf = np.clip(px - 0.5, 0, w - 1)
    yf = np.clip(py - 0.5, 0, h - 1)
    c0 = np.minimum(xf.astype(np.int64), w - 2)
    r0 = np.minimum(yf.astype(np.int64), h - 2)
    tx = (xf - c0).astype(np.float32)
    ty = (yf - r0).astype(np.float32)
    # the cell's corners, weights and links in cycle order: 00 -> 01 -> 11 -> 10 -> 00
    vals = np.stack([view[r0, c0], view[r0, c0 + 1], view[r0 + 1, c0 + 1], view[r0 + 1, c0]])
    wts = np.stack([(1 - tx) * (1 - ty), tx * (1 - ty), tx * ty, (1 - tx) * ty])
    lk = np.stack([right[r0, c0], down[r0, c0 + 1], right[r0 + 1, c0], down[r0, c0]])
    cut = ~lk.all(0)
    out = (vals * wts).sum(0)
    k = np.flatnonzero(cut)
    if len(k):
        vk, wk, lkk = vals[:, k], wts[:, k], lk[:, k]
        m = np.arange(len(k))
        near = np.where(ty[k] < 0.5, np.where(tx[k] < 0.5, 0, 1), np.where(tx[k] < 0.5, 3, 2))
        reach = _reach(lkk, near, m)
        if front_weight < 1.0:
            front = np.argmax(np.where(np.isfinite(vk), vk, -np.inf), axis=0)
            rf = _reach(lkk, front, m)
            take = np.isfinite(vk[front, m]) & ((wk * rf).sum(0) >= front_weight)
            reach = np.where(take, rf, reach)
            near = np.where(take, front, near)
        wk = np.where(reach, wk, 0.0)
        with np.errstate(invalid="ignore"):
            side = (np.where(reach, vk, 0.0) * wk).sum(0) / np.maximum(wk.sum(0), 1e-12)
        out[k] = np.where(np.isfinite(vk[near, m]), side, np.nan)
    return out.astype(np.float32), cut


def _reach(lk: np.ndarray, start: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Corners of each cell joined to corner ``start`` by surface links. lk: [4, M] links in cycle
    order (00-01, 01-11, 11-10, 10-00); corners in cycle order 00, 01, 11, 10. [4, M] bool"""
    a0, a1, a2, a3 = (lk[(start + k) % 4, m] for k in range(4))
    reach = np.ones(lk.shape, bool)
    # a corner joins the start through either way round the cell
    reach[(start + 1) % 4, m] = a0 | (a3 & a2 & a1)
    reach[(start + 2) % 4, m] = (a0 & a1) | (a3 & a2)
    reach[(start + 3) % 4, m] = a3 | (a0 & a1 & a2)
    return reach


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


def view_owner(cameras: list[Camera], height: int) -> np.ndarray:
    """The view that sees each equirect pixel farthest from its border (-1: none). [H, 2H] int

    Used to tell pixels inside one view from pixels across a view border (the seam measure).
    """
    from ..geometry.equirect import equirect_directions

    dirs = equirect_directions(height).reshape(-1, 3)
    best = np.full(len(dirs), -1.0)
    owner = np.full(len(dirs), -1)
    for k, cam in enumerate(cameras):  # one pass per view (~18), vectorised over pixels
        pr = project(dirs, cam)
        better = pr.edge > best[pr.index]
        best[pr.index[better]], owner[pr.index[better]] = pr.edge[better], k
    return owner.reshape(height, 2 * height)


def seam_ratio(pred: np.ndarray, gt: np.ndarray, owner: np.ndarray) -> float:
    """Mean |Δ log(pred / truth)| between neighbouring pixels (across and along rows) owned by
    different views over the same between pixels of one view, on smooth surfaces only: pairs within
    2 px of any depth edge or step of the truth are left out, since there the error of whichever side
    a pixel lands on says nothing about a seam (AbsRel scores edges). A step is a neighbour link
    whose change of inverse depth differs from the change on both sides by more than 1 % of the
    value (:func:`surface_links` on the truth): inverse depth is nearly affine
    on surfaces, and a window recess 4 % deep is a step, not a surface.

    Args:
        pred: estimated ray distance, metres. [H, 2H]
        gt: true ray distance, metres (+inf on sky). [H, 2H]
        owner: the view owning each pixel (:func:`view_owner`). [H, 2H] int

    Returns:
        The ratio: below 1 means no seam shows (the benchmarks' measure).
    """
    from scipy import ndimage

    fin = np.isfinite(pred) & np.isfinite(gt)
    err = np.log(np.where(fin, pred / np.where(fin, gt, 1.0), np.nan))
    right, down = surface_links(np.where(np.isfinite(gt), 1.0 / gt, np.nan).astype(np.float32), 0.01)
    edge = np.zeros(gt.shape, bool)
    edge[:, 1:] |= ~right
    edge[:, :-1] |= ~right
    edge[1:] |= ~down
    edge[:-1] |= ~down
    near_edge = ndimage.binary_dilation(edge, iterations=2)
    inside, across = [], []
    for ax in (0, 1):
        d = np.abs(np.diff(err, axis=ax))
        border = np.diff(owner, axis=ax) != 0
        keep = np.isfinite(d)
        keep &= ~(near_edge[1:] | near_edge[:-1]) if ax == 0 else ~(near_edge[:, 1:] | near_edge[:, :-1])
        inside.append(d[keep & ~border])
        across.append(d[keep & border])
    return float(np.concatenate(across).mean()) / max(float(np.concatenate(inside).mean()), 1e-12)


__all__ = [
    "RINGS",
    "Projection",
    "cut_views",
    "project",
    "ray_length",
    "sample_view",
    "sample_view_edges",
    "sample_view_nearest",
    "seam_ratio",
    "sphere_views",
    "surface_links",
    "view_owner",
    "view_rows",
]
