"""Measures of a render against ground truth at one camera: colour PSNR, holes and floaters.

Used by the splat benchmark (benchmarks/bench_splats.py) to compare initial splats, refined
splats and the sheet mesh at novel views, where a procedural world gives exact colour and depth.
Everything here takes plain arrays, so any renderer's output can be scored.
"""

from __future__ import annotations

import math

import numpy as np

from .._check import check_shape
from ..errors import InputError


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (over ``mask`` pixels when given)."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    return mse_to_psnr(float(d.mean()) if d.size else 0.0)


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error on a [0, 1] scale (inf for 0)."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def holes_and_floaters(
    depth: np.ndarray,
    alpha: np.ndarray,
    true_depth: np.ndarray,
    *,
    far: float,
    rel_tol: float = 0.1,
    min_alpha: float = 0.5,
) -> dict[str, float]:
    """Share of a view's pixels that show a hole or a floater.

    Args:
        depth: rendered Euclidean ray distance, metres (any value where ``alpha`` is low). [H, W]
        alpha: rendered opacity in [0, 1]. [H, W]
        true_depth: ground-truth Euclidean ray distance, metres; +inf where the sky is seen. [H, W]
        far: the farthest true surface of the world, metres: anything rendered nearer than
            ``(1 - rel_tol) x far`` in front of the sky is a floater.
        rel_tol: relative depth tolerance. Default 0.1.
        min_alpha: a pixel with less opacity than this shows whatever lies behind the world. Default 0.5.

    Returns:
        dict: **holes**, the share of pixels with a true surface where the render is transparent
        (alpha < min_alpha); **floaters**, the share of all pixels where the render shows
        something more than ``rel_tol`` nearer than the true surface (or than ``far`` over the
        sky). Blended silhouettes count as floaters where their expected depth is off by more
        than the tolerance: that is the fringe a viewer sees.
    """
    depth = np.asarray(depth, np.float64)
    check_shape(depth, ("H", "W"), "rendered depth")
    check_shape(np.asarray(alpha), depth.shape, "rendered alpha")
    check_shape(np.asarray(true_depth), depth.shape, "true depth")
    H, W = depth.shape
    if not (far > 0 and math.isfinite(far)) or not 0 < rel_tol < 1:
        raise InputError("far must be a positive distance and rel_tol in (0, 1)")
    alpha = np.asarray(alpha, np.float64)
    true_depth = np.asarray(true_depth, np.float64)
    surface = np.isfinite(true_depth)
    opaque = alpha >= min_alpha
    limit = np.where(surface, true_depth, far) * (1.0 - rel_tol)
    floaters = opaque & np.isfinite(depth) & (depth < limit)
    n = float(H * W)
    return {"holes": float((surface & ~opaque).sum()) / n, "floaters": float(floaters.sum()) / n}
