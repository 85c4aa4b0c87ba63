"""Tiny seeded scenes and clouds shared by the exporter tests (built here, nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.exporters.validate import node_tools_missing, nvidia_missing
from worldgen.types import GaussianCloud, Mesh, MeshScene

needs_node = pytest.mark.skipif(
    node_tools_missing() is not None, reason=f"node validators missing: {node_tools_missing()}"
)
needs_nvidia = pytest.mark.skipif(nvidia_missing() is not None, reason=f"NVIDIA validator missing: {nvidia_missing()}")


def grid(n: int, size: float = 10.0, y: float = -1.6, bump: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An n x n vertex terrain grid: (vertices [V, 3], CCW-up faces [F, 3], uvs [V, 2])."""
    u = np.linspace(0.0, 1.0, n)
    uu, vv = np.meshgrid(u, u)
    x = (uu - 0.5) * size
    z = (vv - 0.5) * size
    h = y + bump * np.sin(3 * x) * np.cos(2 * z)
    verts = np.stack([x, h, z], -1).reshape(-1, 3).astype(np.float32)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]).astype(np.int32)
    uvs = np.stack([uu, vv], -1).reshape(-1, 2).astype(np.float32)
    return verts, faces, uvs


def mesh_scene(n: int = 12, seed: int = 0, tex_shape: tuple[int, int] = (60, 100)) -> MeshScene:
    """world (textured, non-power-of-two texture), sky (textured dome cap), collision (untextured)."""
    rng = np.random.default_rng(seed)
    v, f, uv = grid(n)
    tex = (rng.random((*tex_shape, 3)) * 255).astype(np.uint8)
    sky_v = v.copy()
    sky_v[:, 1] = 50.0
    sky_f = f[:, ::-1].copy()  # faces look down at the camera
    cv, cf, _ = grid(max(3, n // 3), bump=0.0)
    return MeshScene(
        {
            "world": Mesh(v, f, uvs=uv, texture=tex),
            "sky": Mesh(sky_v * np.float32([10, 1, 10]), sky_f, uvs=uv, texture=tex[:50].copy()),  # 2:1 like a panorama
            "collision": Mesh(cv, cf),
        },
        {"note": "test scene"},
    )


def cloud(n: int = 64, degree: int = 3, seed: int = 0) -> GaussianCloud:
    """Random splats with SH inside SPZ's representable range (|coef| < 0.9)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k = (degree + 1) ** 2
    sh = rng.uniform(-0.8, 0.8, (n, k, 3))
    sh[:, 0] = rng.uniform(-1.5, 1.5, (n, 3))
    return GaussianCloud(rng.uniform(-20, 20, (n, 3)), q, rng.uniform(-4, -1, (n, 3)), rng.uniform(-4, 4, n), sh)
