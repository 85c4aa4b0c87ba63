"""Equirectangular (ERP) mapping, perspective and cubemap views cut from a panorama and pasted back.

Convention (docs/conventions.md):
    A panorama is H rows by W = 2H columns. Continuous pixel coordinates (x, y) put the centre of
    pixel (col, row) at (col + 0.5, row + 0.5). Longitude lon = 2*pi*x/W - pi lies in [-pi, pi):
    the image centre (lon = 0) looks along -Z, lon = +pi/2 looks along +X (right), and the
    left/right edges meet at the seam behind the viewer (+Z). Latitude lat = pi/2 - pi*y/H runs
    from +pi/2 (top edge, +Y) to -pi/2 (bottom edge, -Y). The unit ray of (lon, lat) is
    (cos lat sin lon, sin lat, -cos lat cos lon).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .._check import check_shape
from ..errors import InputError
from ..types import Camera


def lonlat_to_direction(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Unit ray directions in the world frame.

    Args:
        lon: longitude, radians. [...]
        lat: latitude, radians. [...]

    Returns:
        Unit vectors. [..., 3] float64
    """
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    c = np.cos(lat)
    return np.stack([c * np.sin(lon), np.sin(lat), -c * np.cos(lon)], axis=-1)


def direction_to_lonlat(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`lonlat_to_direction` for any non-zero vectors.

    Args:
        d: directions (need not be unit length). [..., 3]

    Returns:
        A tuple: **lon** in [-pi, pi) [...], **lat** in [-pi/2, pi/2] [...], radians, float64.
    """
    d = np.asarray(d, dtype=np.float64)
    lon = np.arctan2(d[..., 0], -d[..., 2])
    lon = np.where(lon >= math.pi, lon - 2 * math.pi, lon)
    lat = np.arctan2(d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    return lon, lat


def pixel_to_direction(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rays of continuous panorama coordinates (pixel centres at +0.5). Returns [..., 3] float64."""
    lon = 2 * math.pi * np.asarray(x, dtype=np.float64) / width - math.pi
    lat = math.pi / 2 - math.pi * np.asarray(y, dtype=np.float64) / height
    return lonlat_to_direction(lon, lat)


def direction_to_pixel(d: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous panorama coordinates of ray directions. Returns (x in [0, W), y in [0, H]) float64."""
    lon, lat = direction_to_lonlat(d)
    x = (lon + math.pi) / (2 * math.pi) * width
    y = (math.pi / 2 - lat) / math.pi * height
    return np.mod(x, width), y


def equirect_directions(height: int, width: int | None = None) -> np.ndarray:
    """Unit ray of every pixel centre of an H x 2H panorama.

    Returns:
        [H, W, 3] float32, world frame.

    Example:
        >>> equirect_directions(2).shape
        (2, 4, 3)
    """
    width = 2 * height if width is None else width
    x = np.arange(width, dtype=np.float64) + 0.5
    y = np.arange(height, dtype=np.float64) + 0.5
    return pixel_to_direction(x[None, :], y[:, None], width, height).astype(np.float32)


def sample_equirect(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> np.ndarray:
    """Sample a panorama at continuous coordinates, wrapping across the ±180° seam and over the poles.

    Args:
        image: any per-pixel values. [H, W] or [H, W, C]
        x, y: continuous coordinates (pixel centres at +0.5). [...]
        mode: "bilinear", or "nearest" for values that must not be blended (depth, class ids).

    Returns:
        [..., C] (or [...] for a 2-D image), image dtype for "nearest", float32 otherwise.

    Convention:
        Past the top or bottom edge the sphere continues on the opposite meridian: row -1 at
        longitude lon is row 0 at lon + pi. This keeps bilinear samples correct at the poles.
    """
    img = np.asarray(image)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    h, w = img.shape[:2]
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if mode == "nearest":
        col = np.floor(x).astype(np.int64)
        row = np.floor(y).astype(np.int64)
        out = _gather(img, row, col)
    elif mode == "bilinear":
        xf = x - 0.5
        yf = y - 0.5
        c0 = np.floor(xf).astype(np.int64)
        r0 = np.floor(yf).astype(np.int64)
        tx = (xf - c0)[..., None]
        ty = (yf - r0)[..., None]
        f = img.astype(np.float32)
        out = (_gather(f, r0, c0) * (1 - tx) + _gather(f, r0, c0 + 1) * tx) * (1 - ty) + (
            _gather(f, r0 + 1, c0) * (1 - tx) + _gather(f, r0 + 1, c0 + 1) * tx
        ) * ty
        out = out.astype(np.float32)
    else:
        raise InputError(f"unknown sampling mode {mode!r}; use 'bilinear' or 'nearest'")
    return out[..., 0] if squeeze else out


def _gather(img: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Index with wrap in columns and reflection over the poles (rows -1 and H map across)."""
    h, w = img.shape[:2]
    over = (row < 0) | (row >= h)
    row = np.where(row < 0, -1 - row, row)
    row = np.where(row >= h, 2 * h - 1 - row, row)
    row = np.clip(row, 0, h - 1)
    col = np.where(over, col + w // 2, col) % w
    return img[row, col]


def look_rotation(forward: np.ndarray, up: np.ndarray = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Rotation whose camera looks along ``forward`` with ``up`` as close to +Y_cam as possible.

    Returns:
        cam_to_world rotation: columns are the camera's +X, +Y, +Z (= -forward) axes. [3, 3] float64
    """
    f = np.asarray(forward, dtype=np.float64)
    f = f / np.linalg.norm(f)
    u = np.asarray(up, dtype=np.float64)
    if abs(float(np.dot(f, u / np.linalg.norm(u)))) > 0.999:
        u = np.array([0.0, 0.0, -1.0]) if f[1] > 0 else np.array([0.0, 0.0, 1.0])
    r = np.cross(f, u)
    r /= np.linalg.norm(r)
    u2 = np.cross(r, f)
    return np.stack([r, u2, -f], axis=1)


def perspective_directions(camera: Camera) -> np.ndarray:
    """World-frame unit ray through each pixel centre of a perspective camera. [h, w, 3] float64"""
    if camera.model != "perspective":
        raise InputError("perspective_directions needs a perspective camera")
    u = np.arange(camera.width, dtype=np.float64) + 0.5
    v = np.arange(camera.height, dtype=np.float64) + 0.5
    xc = (u[None, :] - camera.cx) / camera.fx
    yc = -(v[:, None] - camera.cy) / camera.fy
    d = np.stack(np.broadcast_arrays(xc, yc, -np.ones_like(xc * yc)), axis=-1)
    d = d @ camera.cam_to_world[:3, :3].T
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def equirect_to_perspective(
    image: np.ndarray, camera: Camera, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> np.ndarray:
    """Cut a perspective view from a panorama seen from the panorama's centre.

    The camera's translation is ignored: a panorama holds directions only. For a depth panorama
    use mode="nearest"; its values stay Euclidean ray distances, which are also the perspective
    view's ray distances because both views share the centre.

    Args:
        image: panorama values. [H, 2H] or [H, 2H, C]
        camera: perspective camera (its rotation is used).

    Returns:
        [h, w] or [h, w, C].
    """
    h = check_shape(np.asarray(image)[..., None] if np.ndim(image) == 2 else image, ["H", "W", "C"], "panorama")["H"]
    d = perspective_directions(camera)
    x, y = direction_to_pixel(d, 2 * h, h)
    return sample_equirect(image, x, y, mode)


def perspective_to_equirect(
    view: np.ndarray, camera: Camera, height: int, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> tuple[np.ndarray, np.ndarray]:
    """Paste a perspective view back onto an H x 2H panorama.

    Args:
        view: per-pixel values of the view. [h, w] or [h, w, C]
        camera: the view's camera (rotation used, translation ignored).
        height: H of the panorama.

    Returns:
        A tuple: **pano** [H, 2H(, C)] float32 (zero where the view does not reach) and
        **covered**, True where the panorama pixel's ray passes through the view. [H, 2H] bool
    """
    view = np.asarray(view)
    squeeze = view.ndim == 2
    v = view[..., None] if squeeze else view
    check_shape(v, [camera.height, camera.width, "C"], "perspective view")
    dirs = equirect_directions(height).astype(np.float64)
    local = dirs @ camera.cam_to_world[:3, :3]  # world -> camera (rotation inverse = transpose)
    z = -local[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = camera.cx + camera.fx * local[..., 0] / z
        py = camera.cy - camera.fy * local[..., 1] / z
    covered = (z > 1e-9) & (px >= 0) & (px <= camera.width) & (py >= 0) & (py <= camera.height)
    out = np.zeros((height, 2 * height, v.shape[2]), np.float32)
    px_c, py_c = px[covered], py[covered]
    if mode == "nearest":
        col = np.clip(np.floor(px_c).astype(np.int64), 0, camera.width - 1)
        row = np.clip(np.floor(py_c).astype(np.int64), 0, camera.height - 1)
        out[covered] = v[row, col]
    else:
        xf = np.clip(px_c - 0.5, 0, camera.width - 1)
        yf = np.clip(py_c - 0.5, 0, camera.height - 1)
        c0 = np.minimum(np.floor(xf).astype(np.int64), camera.width - 2 if camera.width > 1 else 0)
        r0 = np.minimum(np.floor(yf).astype(np.int64), camera.height - 2 if camera.height > 1 else 0)
        c1 = np.minimum(c0 + 1, camera.width - 1)
        r1 = np.minimum(r0 + 1, camera.height - 1)
        tx = (xf - c0)[:, None]
        ty = (yf - r0)[:, None]
        f = v.astype(np.float32)
        out[covered] = (f[r0, c0] * (1 - tx) + f[r0, c1] * tx) * (1 - ty) + (f[r1, c0] * (1 - tx) + f[r1, c1] * tx) * ty
    return (out[..., 0] if squeeze else out), covered


_CUBE_FORWARD = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}


def cubemap_cameras(face_size: int) -> dict[str, Camera]:
    """Six 90° cameras at the origin, keyed "+x", "-x", "+y", "-y", "+z", "-z" by view direction.

    Side faces keep +Y up; the +y (up) face has -Z at its bottom edge... see :func:`look_rotation`.
    """
    cams = {}
    for name, fwd in _CUBE_FORWARD.items():
        m = np.eye(4)
        m[:3, :3] = look_rotation(np.array(fwd))
        cams[name] = Camera.perspective(face_size, face_size, 90.0, m)
    return cams


def equirect_to_cubemap(
    image: np.ndarray, face_size: int, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> dict[str, np.ndarray]:
    """Six cube faces cut from a panorama. Returns name -> [s, s(, C)]."""
    return {k: equirect_to_perspective(image, cam, mode) for k, cam in cubemap_cameras(face_size).items()}


def cubemap_to_equirect(
    faces: dict[str, np.ndarray], height: int, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> np.ndarray:
    """Reassemble an H x 2H panorama from the six faces of :func:`equirect_to_cubemap`."""
    size = next(iter(faces.values())).shape[0]
    cams = cubemap_cameras(size)
    out = None
    weight = None
    for name, cam in cams.items():
        pano, cov = perspective_to_equirect(faces[name], cam, height, mode)
        if out is None:
            out = np.zeros_like(pano)
            weight = np.zeros(cov.shape, np.float32)
        # Each ray lies in one face except on the cube's edges; the first writer wins there.
        take = cov & (weight == 0)
        out[take] = pano[take]
        weight[take] = 1
    return out
