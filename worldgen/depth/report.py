"""Facts about a depth map for the manifest."""

from __future__ import annotations

import numpy as np

from ..types import DepthMap


def depth_report(depth: DepthMap) -> dict:
    """Sky fraction and distance quantiles (metres) of the finite pixels."""
    finite = depth.depth[depth.valid]
    return {
        "sky_fraction": round(float(depth.sky.mean()), 4),
        "min_m": round(float(finite.min()), 4) if finite.size else None,
        "median_m": round(float(np.median(finite)), 4) if finite.size else None,
        "p95_m": round(float(np.percentile(finite, 95)), 4) if finite.size else None,
    }


__all__ = ["depth_report"]
