"""Collision part: a light copy of the world geometry (ground and obstacles) for physics engines."""

from __future__ import annotations

import math

import numpy as np

from ..errors import BackendUnavailableError
from ..types import Mesh
from .simplify import compact, simplify, vertex_normals, weld


def collision_mesh(vertices: np.ndarray, faces: np.ndarray, max_triangles: int) -> Mesh:
    """Weld and simplify world geometry to at most ``max_triangles`` triangles, without texture.

    Borders are not locked here (physics needs no exact silhouettes), so the simplifier can spend
    the budget on shape. Faces keep their winding (front faces toward the capture point); engines
    that need two-sided collision set that in the exporter.

    Args:
        vertices: world-part positions, metres. [V, 3]
        faces: world-part triangles, CCW. [F, 3] int
        max_triangles: triangle budget (e.g. 20000).

    Returns:
        Mesh with vertices, faces and normals only.

    Raises:
        BackendUnavailableError: the simplifier stalls above the budget (meshes with many
            open borders can); the sheet extractor avoids this with :func:`collision_from_grid`.
    """
    v, f = weld(vertices, faces, tolerance=1e-5)
    target = max_triangles
    for _ in range(4):  # the simplifier can stop a little above its target: aim lower and retry
        v, f = simplify(v, f, target, preserve_border=False, aggressiveness=7.0)
        if len(f) <= max_triangles:
            return Mesh(v.astype(np.float32), f, vertex_normals(v, f))
        target = int(target * 0.8)
    raise BackendUnavailableError(
        f"the collision mesh stalls at {len(f)} triangles above its budget {max_triangles}; raise collision_triangles"
    )


def collision_from_grid(depth: np.ndarray, valid: np.ndarray, max_triangles: int, config) -> Mesh:
    """Collision part of a sheet: the same cut, closed grid at a stride coarse enough for the budget.

    A sheet cut at depth edges has many open borders, on which quadric simplification stalls
    (measured: a 66k-triangle room sheet stops near 3.6k triangles whatever the target), so the
    budget is met by sampling the grid more coarsely instead, then simplifying the rest of the way.

    Args:
        depth: ray distance, metres. [H, W] float
        valid: pixels with a surface. [H, W] bool
        max_triangles: triangle budget.
        config: the SheetConfig whose cut thresholds apply (backfill is left out: physics
            needs no surface hidden behind an occluder).

    Returns:
        Mesh with vertices, faces and normals, at most ``max_triangles`` faces.
    """
    from dataclasses import replace

    from .sheet import sheet_geometry

    H, W = depth.shape
    cfg = replace(config, backfill=False)
    # Two triangles per grid cell on an h x 2h grid: 4 h^2 <= budget.
    stride = max(1, math.ceil(W / (2 * max(2, int(math.sqrt(max_triangles / 4))))))
    while True:
        v, f, _ = sheet_geometry(depth, valid, stride, cfg)
        v, f = weld(v, f, tolerance=1e-5)
        if len(f) > max_triangles:
            v, f = simplify(v, f, max_triangles, preserve_border=False)
        if len(f) <= max_triangles or stride >= W // 4:
            break
        stride *= 2
    if len(f) > max_triangles:
        raise BackendUnavailableError(f"no collision mesh within {max_triangles} triangles; raise collision_triangles")
    v, f = compact(v, f)
    return Mesh(v.astype(np.float32), f, vertex_normals(v, f))
