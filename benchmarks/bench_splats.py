"""Splat refinement (issue 5). CPU figures on the machine named above, with the PyTorch rasterizer.

World: an analytic room (6 x 3 x 7.5 m box, three balls, smooth procedural colour) ray-cast
exactly, so ground truth exists at any viewpoint. Splats come from worldgen.splats.init.
"step" = one 256x256 forward + backward of RGB + expected depth. "held-out" = 90° views from
the capture point in directions no training view uses. "novel 0.5 m" = 8 horizontal 90° views
from a camera moved 0.5 m sideways, against the exact ray-cast ground truth.
"""

from __future__ import annotations

import math
import time

import numpy as np

_LO, _HI = np.array([-3.0, -1.6, -4.0]), np.array([3.0, 1.4, 3.5])
_BALLS = [(np.array([1.0, -0.9, -2.2]), 0.7), (np.array([-1.4, -1.1, -1.6]), 0.5), (np.array([0.3, 0.2, 2.0]), 0.6)]


def _cast(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance and colour along unit rays. dirs [..., 3] -> (t [...], rgb [..., 3])."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tb = np.where(dirs > 0, (_HI - origin) / dirs, (_LO - origin) / dirs)
    t = np.where(np.isfinite(tb) & (tb > 0), tb, np.inf).min(-1)
    for c, r in _BALLS:
        oc = c - origin
        b = dirs @ oc
        disc = b * b - (oc @ oc - r * r)
        ts = b - np.sqrt(np.maximum(disc, 0))
        t = np.where((disc > 0) & (ts > 0) & (ts < t), ts, t)
    p = origin + dirs * t[..., None]
    rgb = 0.5 + 0.22 * np.sin(p * np.array([2.1, 3.3, 1.7])) + 0.14 * np.cos(4.0 * p[..., [2, 0, 1]])
    rgb += 0.08 * np.sign(np.sin(6 * p[..., 0]) * np.sin(6 * p[..., 2]))[..., None]
    return t, np.clip(rgb, 0, 1).astype(np.float32)


def _world(h: int):
    from worldgen.geometry import equirect_directions
    from worldgen.types import DepthMap, Panorama

    t, rgb = _cast(np.zeros(3), equirect_directions(h).astype(np.float64))
    return Panorama(rgb), DepthMap(t.astype(np.float32), np.zeros(t.shape, bool))


def _truth_views(position, size: int, dirs):
    from worldgen.splats.views import view_camera

    out = []
    for yaw, pitch in dirs:
        cam = view_camera(yaw, pitch, size, position=position)
        u = (np.arange(size) + 0.5 - cam.cx) / cam.fx
        v = (np.arange(size) + 0.5 - cam.cy) / cam.fy
        rays = np.stack(np.broadcast_arrays(u[None, :], -v[:, None], -np.ones((size, size))), -1)
        rays = rays @ cam.cam_to_world[:3, :3].T
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        out.append((cam, _cast(np.asarray(position, float), rays)[1]))
    return out


def _psnr_views(cloud, views) -> float:
    from worldgen.splats.rasterize import render_cloud
    from worldgen.splats.refine import psnr

    return float(np.mean([psnr(render_cloud(cloud, [c], rasterizer="cpu")["rgb"][0], gt) for c, gt in views]))


def step_time(n_target: int = 200_000, size: int = 256, repeats: int = 3) -> tuple[float, int, int]:
    """Median seconds of one training step, splat count, intersections."""
    import torch

    from worldgen.splats.init import init_gaussians
    from worldgen.splats.rasterize import rasterize_cpu
    from worldgen.splats.views import view_camera
    from worldgen.splats.rasterize import cameras_to_gsplat

    h = int(round(math.sqrt(n_target / 2)))
    pano, depth = _world(h)
    cloud = init_gaussians(pano, depth)
    p = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in
         (("m", cloud.means), ("q", cloud.quats), ("s", cloud.log_scales), ("o", cloud.opacity_logits), ("c", cloud.sh))}
    vm, K, w, hh = cameras_to_gsplat([view_camera(30.0, -10.0, size)])
    vm, K = torch.tensor(vm), torch.tensor(K)
    times, nis = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        img, a, meta = rasterize_cpu(p["m"], p["q"], torch.exp(p["s"]), torch.sigmoid(p["o"]), p["c"], vm, K, w, hh,
                                     sh_degree=0, render_mode="RGB+ED")
        (img[..., :3].mean() + img[..., 3].mean() * 0.01 + a.mean()).backward()
        times.append(time.perf_counter() - t0)
        nis = meta["n_intersections"]
    return float(np.median(times)), len(cloud), nis


def quality(h: int = 512, preset: str = "balanced", **overrides):
    """Refine a 2h x h world with ``preset``; PSNRs of init and refined at held-out and novel views."""
    from worldgen.splats.init import init_gaussians
    from worldgen.splats.refine import refine_gaussians, with_preset

    pano, depth = _world(h)
    cloud = init_gaussians(pano, depth)
    cfg = with_preset(preset, **overrides)
    held = _truth_views(np.zeros(3), 128, [(20.0, 10.0), (110.0, -25.0), (200.0, 30.0), (290.0, -60.0)])
    novel = _truth_views(np.array([0.5, 0.0, 0.0]), 128, [(float(y), -10.0) for y in range(0, 360, 45)])
    t0 = time.perf_counter()
    out, rep = refine_gaussians(cloud, pano, depth, cfg, seed=0)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "report": rep, "held_init": _psnr_views(cloud, held), "held_refined": _psnr_views(out, held),
            "novel_init": _psnr_views(cloud, novel), "novel_refined": _psnr_views(out, novel),
            "cloud_init": cloud, "cloud_refined": out}


def run() -> list[dict]:
    rows = []
    t, n, nis = step_time()
    rows.append({"name": f"training step 256x256, {n} splats (fwd+bwd)", "value": t, "unit": "s",
                 "target": "<= 1.5 s", "ok": t <= 1.5, "note": f"{nis} splat-pixel intersections"})
    q = quality(512, "balanced")
    rep = q["report"]
    rows.append({"name": f"balanced preset on CPU, 1024x512 world ({rep['n_gaussians_in']} splats)",
                 "value": q["seconds"], "unit": "s", "target": "<= 600 s", "ok": q["seconds"] <= 600,
                 "note": f"{rep['iterations']} steps at {rep['view_size']}px"})
    rows.append({"name": "held-out views from the capture point, refined", "value": q["held_refined"], "unit": "dB",
                 "target": ">= 30 dB", "ok": q["held_refined"] >= 30, "note": f"unrefined {q['held_init']:.2f} dB"})
    rows.append({"name": "novel views 0.5 m away, refined", "value": q["novel_refined"], "unit": "dB",
                 "target": "> unrefined", "ok": q["novel_refined"] > q["novel_init"],
                 "note": f"unrefined {q['novel_init']:.2f} dB; sheet mesh not measured here"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
