"""Collision part: a light copy of the world geometry (ground and obstacles) for physics engines."""

from __future__ import annotations

import numpy as np

from ..types import Mesh
from .simplify import simplify, vertex_normals, weld


def collision_mesh(vertices: np.ndarray, faces: np.ndarray, max_triangles: int) -> Mesh:
    """Weld and simplify world geometry to at most ``max_triangles`` triangles, without texture.

    Borders are not locked here (physics needs no exact silhouettes), so the simplifier can spend
    the budget on shape. Faces keep their winding (front faces toward the capture point); engines
    that need two-sided collision flags set them in the exporter.

    Args:
        vertices: world-part positions, metres. [V, 3]
        faces: world-part triangles, CCW. [F, 3] int
        max_triangles: triangle budget (e.g. 20000).

    Returns:
        Mesh with vertices, faces and normals only.
    """
    v, f = weld(vertices, faces, tolerance=1e-5)
    target = max_triangles
    for _ in range(3):  # the simplifier can stop a little above its target: aim lower and retry
        v, f = simplify(v, f, target, preserve_border=False, aggressiveness=7.0)
        if len(f) <= max_triangles:
            break
        target = int(target * 0.9)
    return Mesh(v.astype(np.float32), f, vertex_normals(v, f))
