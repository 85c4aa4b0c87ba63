"""The ``layout`` depth backend: a weight-free geometric prior for panoramas without depth (the
default before ``prior``): a ground plane at the eye height below the horizon, a far enclosing
sphere above it, and sky found from colour and smoothness where it touches the top of the image. It
gets the overall scale and the horizon right and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry import equirect_directions
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import DepthMap, Panorama
from .report import depth_report


@dataclass(frozen=True)
class LayoutConfig:
    """Parameters of the layout prior.

    Args:
        far: radius of the enclosing sphere above the horizon and cap of the ground plane, metres (30).
        detect_sky: find sky pixels from colour and smoothness (True); False puts the sphere everywhere.
    """

    far: float = 30.0
    detect_sky: bool = True


def layout_depth(panorama: Panorama, eye_height: float = 1.6, config: LayoutConfig = LayoutConfig()) -> DepthMap:
    """Geometric depth prior: ground plane below the horizon, sphere of radius ``far`` above.

    Args:
        panorama: the colour panorama (used only to find sky).
        eye_height: camera height above the ground plane, metres.

    Returns:
        Euclidean depth, metres, +inf on detected sky. [H, W]
    """
    if eye_height <= 0:
        raise InputError(f"eye height {eye_height} m must be > 0")
    if config.far <= eye_height:
        raise InputError(f"layout far distance {config.far} m must exceed the eye height {eye_height} m")
    h = panorama.height
    dirs = equirect_directions(h)
    down = -dirs[..., 1].astype(np.float64)
    with np.errstate(divide="ignore"):
        ground = np.where(down > 1e-6, eye_height / np.maximum(down, 1e-6), np.inf)
    depth = np.minimum(ground, config.far).astype(np.float32)
    sky = _sky_mask(panorama) if config.detect_sky else np.zeros(depth.shape, bool)
    depth[sky] = np.inf
    return DepthMap(depth, sky)


def _sky_mask(panorama: Panorama) -> np.ndarray:
    """Sky = smooth, bright or blue-ish pixels above the horizon, connected to the top row."""
    from scipy import ndimage

    img = panorama.image
    h, w = img.shape[:2]
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    gy, gx = np.gradient(lum)
    smooth = np.hypot(gx, gy) < 0.03
    bluish = (b >= r) & (b >= 0.9 * g) & (lum > 0.25)
    bright = (lum > 0.7) & (img.max(-1) - img.min(-1) < 0.15)
    upper = (np.arange(h) < h // 2)[:, None]
    cand = smooth & (bluish | bright) & upper
    # Wrap the seam: label a panorama padded with its own left columns on the right.
    pad = w // 8
    lab, _ = ndimage.label(np.concatenate([cand, cand[:, :pad]], axis=1))
    top = np.unique(lab[0][lab[0] > 0])
    sky = np.isin(lab, top)
    sky = sky[:, :w] | np.concatenate([sky[:, w:], np.zeros((h, w - pad), bool)], axis=1)
    return sky


def _run_layout(ctx: StageContext) -> StageResult:
    depth = layout_depth(ctx.inputs["panorama"], ctx.request.eye_height, ctx.config)
    rep = depth_report(depth)
    rep["note"] = "geometric prior (ground plane + far sphere), not a depth estimate"
    return StageResult(artifacts={"depth": depth}, report=rep)


register_backend(
    Backend(
        stage="depth",
        name="layout",
        run=_run_layout,
        config=LayoutConfig,
        summary="weight-free prior: ground plane at eye height + far sphere, sky from colour; coarse",
    )
)

__all__ = ["LayoutConfig", "layout_depth"]
