"""Training views for splat refinement: perspective views cut from the panorama, and warped RGB-D views.

gsplat has no equirectangular camera, so the panorama supervises the splats through pinhole
views. :func:`capture_views` cuts 18 overlapping 90° views that cover the whole sphere from the
capture point (8 around the horizon, 4 + 4 at ±45° pitch, straight up and straight down).
:func:`warped_views` adds small-baseline views: the panorama's RGB-D is unprojected to points and
forward-splatted with a z-buffer into cameras moved a few centimetres; pixels that no point
reaches (disocclusions, stretched surfaces) or where a far point shows through a gap in a nearer
surface are left out of the loss through the view's masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._check import frozen
from ..errors import InputError
from ..geometry import equirect_directions, equirect_to_perspective, look_rotation
from ..types import Camera, DepthMap, Panorama


@dataclass(frozen=True, eq=False)
class TrainingView:
    """One supervised view.

    Args:
        camera: perspective camera in the world frame (glTF camera axes).
        image: target colour, sRGB in [0, 1]. [H, W, 3] float32
        depth: target camera z-depth (distance along the view axis), metres; 0 where unknown. [H, W] float32
        color_mask: pixels whose colour is supervised. [H, W] bool
        depth_mask: pixels whose depth is supervised (known surface). [H, W] bool
        sky: pixels that see the sky. [H, W] bool
        kind: "capture" (cut from the panorama at the capture point) or "warped".
    """

    camera: Camera
    image: np.ndarray
    depth: np.ndarray
    color_mask: np.ndarray
    depth_mask: np.ndarray
    sky: np.ndarray
    kind: Literal["capture", "warped"] = "capture"

    def __post_init__(self) -> None:
        for a in (self.image, self.depth, self.color_mask, self.depth_mask, self.sky):
            frozen(a)


def capture_directions() -> list[tuple[float, float]]:
    """(yaw, pitch) in degrees of the 18 capture views; yaw 0 looks along -Z, +90 along +X."""
    dirs = [(float(y), 0.0) for y in range(0, 360, 45)]
    dirs += [(float(y), 45.0) for y in range(45, 360, 90)]
    dirs += [(float(y), -45.0) for y in range(0, 360, 90)]
    dirs += [(0.0, 90.0), (0.0, -90.0)]
    return dirs


def view_camera(
    yaw_deg: float, pitch_deg: float, size: int, fov_deg: float = 90.0, position: np.ndarray | None = None
) -> Camera:
    """Square pinhole camera looking at (yaw, pitch) from ``position`` (default: the capture point)."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    fwd = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), -math.cos(pitch) * math.cos(yaw)])
    pose = np.eye(4)
    pose[:3, :3] = look_rotation(fwd)
    if position is not None:
        pose[:3, 3] = np.asarray(position, dtype=np.float64)
    return Camera.perspective(size, size, fov_deg, pose)


def _z_per_ray(camera: Camera) -> np.ndarray:
    """Camera z per metre of ray length through each pixel centre. [H, W] float32"""
    u = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
    v = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
    return (1.0 / np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)).astype(np.float32)


def _check_inputs(panorama: Panorama, depth: DepthMap, size: int) -> None:
    if depth.shape != (panorama.height, panorama.width):
        raise InputError(
            f"depth is {depth.shape[1]}x{depth.shape[0]} but the panorama is "
            f"{panorama.width}x{panorama.height}; resample the depth to the panorama size"
        )
    if size < 8:
        raise InputError(f"training view size {size} is too small; use at least 8 pixels")


def capture_views(
    panorama: Panorama, depth: DepthMap, size: int, directions: list[tuple[float, float]] | None = None
) -> list[TrainingView]:
    """Perspective views cut from the panorama and its depth at the capture point.

    Args:
        panorama: the world's panorama.
        depth: its depth (Euclidean ray distance, +inf for sky).
        size: view width = height, pixels (90° field of view).
        directions: (yaw, pitch) degrees; default :func:`capture_directions`.

    Returns:
        One :class:`TrainingView` per direction, every pixel colour-supervised.
    """
    _check_inputs(panorama, depth, size)
    out = []
    ray = np.where(depth.sky, 0.0, depth.depth).astype(np.float32)
    for yaw, pitch in directions or capture_directions():
        cam = view_camera(yaw, pitch, size)
        img = np.clip(equirect_to_perspective(panorama.image, cam), 0, 1).astype(np.float32)
        dist = equirect_to_perspective(ray, cam, mode="nearest")
        sky = equirect_to_perspective(depth.sky.astype(np.uint8), cam, mode="nearest") > 0
        z = (dist * _z_per_ray(cam)).astype(np.float32)
        known = ~sky & (z > 0)
        out.append(
            TrainingView(
                cam, img, np.where(known, z, 0).astype(np.float32), np.ones((size, size), bool), known, sky, "capture"
            )
        )
    return out


def warped_views(
    panorama: Panorama,
    depth: DepthMap,
    size: int,
    offsets: np.ndarray,
    directions: list[tuple[float, float]] | None = None,
    edge_ratio: float = 1.1,
) -> list[TrainingView]:
    """Views from cameras moved by ``offsets``, built by forward-warping the panorama's RGB-D.

    Args:
        panorama, depth: the capture.
        size: view size, pixels (90° field of view).
        offsets: camera positions relative to the capture point, metres. [K, 3]
        directions: (yaw, pitch) degrees for every offset; default the 8 horizontal directions.
        edge_ratio: a pixel whose warped depth exceeds ``edge_ratio`` x the nearest depth within
            1 pixel is masked (a far surface seen through a gap between a near surface's points).

    Returns:
        K x len(directions) views. Pixels reached by no point (disocclusions, stretched surfaces)
        are outside ``color_mask``; sky pixels of the panorama warp as directions (infinitely far).
    """
    _check_inputs(panorama, depth, size)
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    h, w = depth.shape
    dirs = equirect_directions(h).reshape(-1, 3).astype(np.float64)
    dist = depth.depth.reshape(-1).astype(np.float64)
    sky = depth.sky.reshape(-1)
    cols = panorama.image.reshape(-1, 3)
    views = []
    for off in offsets:
        for yaw, pitch in directions or [(float(y), 0.0) for y in range(0, 360, 45)]:
            cam = view_camera(yaw, pitch, size, position=off)
            views.append(_warp_one(cam, dirs, dist, sky, cols, edge_ratio))
    return views


def _warp_one(cam: Camera, dirs, dist, sky, cols, edge_ratio: float) -> TrainingView:
    """Z-buffered forward splat of panorama points into one camera (2x2 footprint per point)."""
    R = cam.cam_to_world[:3, :3]
    o = cam.cam_to_world[:3, 3]
    # Sky points sit at infinity: only their direction matters, so they ignore the offset.
    far = 1e6
    pts = dirs * np.where(sky, far, dist)[:, None]
    local = np.where(sky[:, None], dirs * far, pts - o) @ R  # world -> camera (glTF axes)
    z = -local[:, 2]
    s = cam.width
    ok = z > 0.05
    with np.errstate(divide="ignore", invalid="ignore"):
        x = cam.cx + cam.fx * local[:, 0] / z
        y = cam.cy - cam.fy * local[:, 1] / z
    # Only points that land within a pixel of the image can reach it through their 2x2 block.
    ok &= (x > -1) & (x < s + 1) & (y > -1) & (y < s + 1)
    x, y, zz, cc, ss = x[ok], y[ok], z[ok], cols[ok], sky[ok]
    # Each point covers the 2x2 pixel block around its sub-pixel position: panorama points are
    # about one view pixel apart, so single-pixel splatting would leave a sieve of holes.
    bx = np.floor(x - 0.5).astype(np.int64)
    by = np.floor(y - 0.5).astype(np.int64)
    px = np.concatenate([bx, bx + 1, bx, bx + 1])
    py = np.concatenate([by, by, by + 1, by + 1])
    zr = np.tile(zz, 4)
    idx = np.tile(np.arange(zz.shape[0]), 4)
    inside = (px >= 0) & (px < s) & (py >= 0) & (py < s)
    pix = (py * s + px)[inside]
    zr, idx = zr[inside], idx[inside]
    order = np.lexsort((zr, pix))  # by pixel, nearest first
    pix, zr, idx = pix[order], zr[order], idx[order]
    first = np.ones(pix.shape[0], bool)
    first[1:] = pix[1:] != pix[:-1]
    pix, zr, idx = pix[first], zr[first], idx[first]
    img = np.zeros((s * s, 3), np.float32)
    zbuf = np.zeros(s * s, np.float32)
    skyv = np.zeros(s * s, bool)
    hit = np.zeros(s * s, bool)
    img[pix] = cc[idx]
    zbuf[pix] = zr
    skyv[pix] = ss[idx]
    hit[pix] = True
    img, zbuf, skyv, hit = img.reshape(s, s, 3), zbuf.reshape(s, s), skyv.reshape(s, s), hit.reshape(s, s)
    # A far point seen through a gap between a near surface's points is surrounded by nearer
    # pixels: compare with the median of the 8 neighbours (on a slanted surface the median follows
    # the slope, so only real see-through pixels exceed it by ``edge_ratio``).
    zs = np.where(hit & ~skyv, zbuf, np.inf)
    pad = np.pad(zs, 1, constant_values=np.inf)
    ring = [pad[dy : dy + s, dx : dx + s] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    near = np.median(np.stack(ring), axis=0)
    gap = hit & (zs > edge_ratio * near) | (hit & skyv & np.isfinite(near))
    color_mask = hit & ~gap
    depth_mask = color_mask & ~skyv
    return TrainingView(
        cam, img, np.where(depth_mask, zbuf, 0).astype(np.float32), color_mask, depth_mask, skyv & color_mask, "warped"
    )
