"""Polar caps of a generated panorama, resampled through a tangent plane.

An equirect's top row is one point on the sphere, and the rows near it are tiny circles stretched
to the full width. Diffusion models paint those rows like any others: the pole ends up as a fan
of streaks that pinches to a star on the sphere (the "smeared pole"). Here each cap (|latitude|
above ``start_deg``) is re-rendered as the straight-down / straight-up perspective view, area
averaged from 4x supersampled rays so the streaks average out instead of aliasing, and projected
back; the result is blended in with a smooth ramp between ``start_deg`` and ``full_deg``.

The view's pixels are sized like the panorama's rows, so detail at the equirect's own resolution
survives; only what is finer than a panorama row (the azimuthal stretch) is averaged. Rows below
``start_deg`` are untouched.
"""

from __future__ import annotations

import math

import numpy as np

from .._check import check_shape
from ..errors import InputError
from ..geometry import equirect_to_perspective, look_rotation, perspective_to_equirect
from ..types import Camera


def fix_poles(image: np.ndarray, start_deg: float = 60.0, full_deg: float = 75.0, supersample: int = 4) -> np.ndarray:
    """Resample both polar caps of an equirect panorama through tangent-plane views.

    Args:
        image: [H, 2H, C] float values.
        start_deg: latitude (degrees) where the blend starts; rows nearer the equator are unchanged.
        full_deg: latitude from which the cap is fully the resampled view.
        supersample: rays per view pixel along each axis, averaged.

    Returns:
        [H, 2H, C] float32.
    """
    img = np.asarray(image, dtype=np.float32)
    h = check_shape(img, ["H", "W", "C"], "panorama")["H"]
    if img.shape[1] != 2 * h:
        raise InputError(f"a panorama must be 2:1, got {img.shape[1]}x{h}")
    if not 0.0 < start_deg < full_deg < 90.0:
        raise InputError(f"pole blend latitudes must satisfy 0 < {start_deg} < {full_deg} < 90 degrees")
    lat = 90.0 - 180.0 * (np.arange(h) + 0.5) / h  # row centres, degrees
    ramp = np.clip((np.abs(lat) - start_deg) / (full_deg - start_deg), 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    out = img.copy()
    # The view reaches a little past start_deg so bilinear samples at the ramp's start stay inside it.
    half = math.radians(90.0 - start_deg) + 2 * math.pi / h
    fov = 2 * math.degrees(half)
    # View pixel at the centre ~ one panorama row (pi/H radians).
    size = max(8, math.ceil(2 * math.tan(half) / (math.pi / h)))
    for sign in (1.0, -1.0):
        rows = np.nonzero((ramp > 0) & (np.sign(lat) == sign))[0]
        if rows.size == 0:
            continue
        m = np.eye(4)
        m[:3, :3] = look_rotation(np.array([0.0, sign, 0.0]))
        fine = Camera.perspective(size * supersample, size * supersample, fov, m)
        view = equirect_to_perspective(img, fine)
        c = img.shape[2]
        view = view.reshape(size, supersample, size, supersample, c).mean(axis=(1, 3))
        back, covered = perspective_to_equirect(view, Camera.perspective(size, size, fov, m), h)
        w = ramp[rows][:, None, None] * covered[rows][..., None]
        out[rows] = img[rows] * (1 - w) + back[rows] * w
    return out


def pole_spread(image: np.ndarray, rows: int = 1) -> float:
    """Mean standard deviation across longitude of the first and last ``rows`` rows (0 at a clean pole)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    caps = np.concatenate([img[:rows], img[-rows:]], axis=0)
    return float(caps.std(axis=1).mean())
