"""Exporters: a 300k-triangle textured mesh (2048² texture) to GLB and USDZ, and 2M degree-3 splats
to INRIA PLY and SPZ v2, timed end to end (bytes in memory, no disk). Targets from issue 6."""

from __future__ import annotations

import numpy as np

from worldgen._resources import measure
from worldgen.exporters import export_glb, export_ply, export_spz, export_usdz
from worldgen.types import GaussianCloud, Mesh, MeshScene


def _mesh(n_tris: int = 300_000, tex: int = 2048) -> MeshScene:
    side = int(np.ceil(np.sqrt(n_tris / 2))) + 1
    u = np.linspace(0.0, 1.0, side, dtype=np.float32)
    uu, vv = np.meshgrid(u, u)
    x, z = (uu - 0.5) * 40, (vv - 0.5) * 40
    y = -1.6 + 0.5 * np.sin(x) * np.cos(0.7 * z)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    idx = np.arange(side * side).reshape(side, side)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])[:n_tris]
    rng = np.random.default_rng(0)
    g = np.linspace(0, 255, tex, dtype=np.float32)
    img = np.stack([g[None, :].repeat(tex, 0), g[:, None].repeat(tex, 1), np.full((tex, tex), 90.0)], -1)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)  # photo-like noise
    return MeshScene({"world": Mesh(verts, faces, uvs=np.stack([uu, vv], -1).reshape(-1, 2), texture=img)})


def _cloud(n: int = 2_000_000) -> GaussianCloud:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return GaussianCloud(
        rng.uniform(-30, 30, (n, 3)).astype(np.float32),
        q,
        rng.uniform(-5, -1, (n, 3)).astype(np.float32),
        rng.normal(0, 2, n).astype(np.float32),
        rng.normal(0, 0.3, (n, 16, 3)).astype(np.float32),
    )


def _row(name: str, fn, value, target: float) -> dict:
    fn(value)  # warm-up: imports and first-call costs are not what the targets measure
    with measure() as u:
        data = fn(value)
    return {
        "name": name,
        "value": round(u.seconds, 2),
        "unit": "s",
        "target": f"<= {target:g} s",
        "ok": u.seconds <= target,
        "note": f"{len(data) / 1e6:.1f} MB, peak RSS {u.peak_rss / 2**30:.1f} GiB",
    }


def run() -> list[dict]:
    mesh = _mesh()
    rows = [
        _row("300k-triangle textured mesh -> GLB", export_glb, mesh, 2.0),
        _row("300k-triangle textured mesh -> USDZ", export_usdz, mesh, 5.0),
    ]
    del mesh
    cloud = _cloud()
    rows += [
        _row("2M splats (SH degree 3) -> PLY", export_ply, cloud, 3.0),
        _row("2M splats (SH degree 3) -> SPZ v2", export_spz, cloud, 5.0),
    ]
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
