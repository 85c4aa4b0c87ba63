"""Depth stage: metric Euclidean depth for every panorama pixel.

Its backends live in the :mod:`worldgen.depth` package, one module each: ``given``
(:mod:`worldgen.depth.given`), ``layout`` (:mod:`worldgen.depth.layout`), ``prior``
(:mod:`worldgen.depth.prior`) and ``transformers`` (:mod:`worldgen.depth.model`). This module keeps
the old import path of the layout prior.
"""

from __future__ import annotations

from ..depth.layout import LayoutConfig, layout_depth

__all__ = ["LayoutConfig", "layout_depth"]
