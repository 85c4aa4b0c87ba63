"""Sky: where the panorama sees nothing but the sky dome (depth +inf), and whether it is indoors.

Cues, combined:
- colour: blue-ish or bright and unsaturated (overcast, haze, white clouds), or sunset-warm and
  bright; smooth (little texture);
- position: above the horizon, in one piece with the top of the panorama (sky does not float
  below a roof);
- distance, when a depth estimate exists: the sky is the farthest thing in view.
An interior never has sky: :func:`is_indoor` decides that from the panorama's upper half.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..types import Panorama


def _lum(img: np.ndarray) -> np.ndarray:
    return 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]


def sky_colour(panorama: Panorama) -> np.ndarray:
    """Per-pixel sky likelihood from colour and sharp edges alone, in [0, 1]. [H, W] float32

    Clouds are textured but soft; walls, leaves and windows have hard edges: only hard edges
    (a strong local gradient of colour, so that a roofline between a blue sky and a grey facade of
    the same brightness still counts) count against the sky.
    """
    img = panorama.image.astype(np.float32)
    # edges in colour, not only in brightness: a grey facade against a blue sky of the same
    # brightness is a hard edge too
    gy, gx = np.gradient(img, axis=(0, 1))
    # (the colour gradient's norm over sqrt(3): a grey step has the same strength as in brightness)
    hard = ndimage.maximum_filter(np.sqrt((gx**2 + gy**2).sum(-1) / 3.0), size=3)
    # per-pixel gradients of soft shading grow as the panorama gets smaller; step edges do not
    thr = 0.06 * math.sqrt(min(max(512.0 / panorama.height, 1.0), 4.0))
    soft = np.clip(1.5 - hard / thr, 0.0, 1.0)
    return (_hue_likelihood(img) * soft).astype(np.float32)


def _hue_likelihood(img: np.ndarray) -> np.ndarray:
    """Sky likelihood from colour alone: blue-ish, or bright and unsaturated, or bright and warm. [H, W]"""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    lum = _lum(img)
    sat = img.max(-1) - img.min(-1)
    blue = ((b >= r) & (b >= 0.85 * g) & (lum > 0.2)).astype(np.float32)
    grey = ((lum > 0.5) & (sat < 0.2)).astype(np.float32)
    warm = ((lum > 0.5) & (r >= g) & (g >= b) & (sat < 0.5)).astype(np.float32) * 0.7
    return np.maximum(np.maximum(blue, grey), warm)


def fill_columns(sky: np.ndarray, cand: np.ndarray, gap: int = 3) -> np.ndarray:
    """Extend the sky down each column through short breaks (cloud texture, birds) of fewer than
    ``gap`` non-candidate pixels, stopping at the first longer break (the skyline). [H, W] bool"""
    h, w = sky.shape
    blocked = ~cand
    # run length of consecutive blocked pixels ending at each row, top to bottom
    run = np.zeros((h, w), np.int32)
    acc = np.zeros(w, np.int32)
    for y in range(h):  # one vectorised step per row (rows, not pixels)
        acc = np.where(blocked[y], acc + 1, 0)
        run[y] = acc
    stop = np.where((run >= gap).any(0), np.argmax(run >= gap, axis=0) - gap + 1, h)
    top_sky = sky[0] | cand[0]
    rows = np.arange(h)[:, None]
    return sky | ((rows < stop[None, :]) & top_sky[None, :] & cand.any(0)[None, :] & (rows < h // 2))


def connected_to_top(mask: np.ndarray) -> np.ndarray:
    """The parts of ``mask`` connected to the panorama's top row, across the ±180° seam. [H, W] bool"""
    h, w = mask.shape
    pad = max(1, w // 8)
    lab, _ = ndimage.label(np.concatenate([mask, mask[:, :pad]], axis=1))
    top = np.unique(lab[0][lab[0] > 0])
    hit = np.isin(lab, top)
    out = hit[:, :w].copy()
    out[:, :pad] |= hit[:, w:]
    return out


def sky_mask(panorama: Panorama, far: np.ndarray | None = None, threshold: float = 0.5) -> np.ndarray:
    """Sky pixels: sky-coloured and smooth (or, with ``far``, farthest in view), above the horizon,
    in one piece with the top.

    Args:
        panorama: the colour panorama.
        far: optional per-pixel "far" likelihood in [0, 1] from a depth estimate. [H, W]
        threshold: likelihood above which a pixel may be sky.

    Returns:
        [H, W] bool.
    """
    h = panorama.height
    like = sky_colour(panorama)
    if far is not None:
        # far and sky-coloured reinforce each other; far alone is not sky (a distant wall)
        like = np.clip(0.6 * like + 0.6 * np.asarray(far, np.float32) * (like > 0.2), 0, 1)
    upper = (np.arange(h) < h // 2)[:, None]
    cand = (like > threshold) & upper
    sky = fill_columns(connected_to_top(cand), cand) & upper
    # what the sky encloses (cloud texture, birds, stars) is sky too: non-sky pieces of the upper
    # half that do not reach down to the horizon
    h2 = h // 2
    ground_side = connected_to_top(~sky[:h2][::-1])[::-1]
    sky[:h2] |= ~ground_side
    # the hard-edge test blurs the skyline by a pixel or two (the gradient and its 3x3 maximum):
    # give the sky back the sky-coloured pixels next to it, up to the skyline's own edge
    reach = max(1, round(2 * h / 512))
    hue = (_hue_likelihood(panorama.image.astype(np.float32)) > threshold) & upper
    sky |= ndimage.binary_dilation(sky, iterations=reach, mask=hue)
    return sky


def is_indoor(panorama: Panorama, sky: np.ndarray | None = None) -> tuple[bool, dict]:
    """Indoors when almost nothing above 30° latitude is sky and the zenith is closed: a ceiling
    closes the view. (High walls - a canyon, a cliff, a street of towers - can hide most of the sky
    above 30° too, but outdoors the zenith itself is still open.)

    Returns:
        A tuple: **indoor** and the facts it was decided from (for the manifest).
    """
    h = panorama.height
    sky = sky_mask(panorama) if sky is None else sky
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h

    def frac(deg: float) -> float:
        band = lat > np.radians(deg)
        wts = np.cos(lat[band])[:, None] * np.ones((1, panorama.width))
        return float(np.average(sky[band], weights=wts))

    above30, zenith = frac(30), frac(75)
    return above30 < 0.15 and zenith < 0.25, {"sky_above_30deg": round(above30, 4), "sky_above_75deg": round(zenith, 4)}


__all__ = ["connected_to_top", "is_indoor", "sky_colour", "sky_mask"]
