"""Splat refinement (issue 5), CPU, PyTorch rasterizer, on procedural worlds with exact ground truth.

Worlds come from worldgen.procedural (prompt "a cozy living room interior", seed 0): the
synthesizer's panorama and exact depth feed worldgen.splats.init, and ``render_view`` of the same
scene gives exact colour at any pose. "step" = one 256x256 forward + backward (RGB + expected
depth) on a ~200k-splat world (632x316 panorama); wall and process CPU seconds are reported (CPU
seconds approximate an idle machine's wall time at 1 thread). "balanced" = the balanced preset
on a 1024x512 world. "held-out" = 4 views of 128 px from the capture point in directions no
training view uses; "novel 0.5 m" = 8 horizontal views 0.5 m to the side. The sheet mesh
(worldgen.mesh.sheet, default config) is ray-cast at the same poses with
worldgen.evaluation.geometry.render_view (holes stay magenta, as a viewer would see them).
The load average (1 min) is in each note: on a shared machine every time is inflated.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

PROMPT = "a cozy living room interior"
PREVIEW = Path(__file__).resolve().parent.parent / "docs" / "images" / "splats" / "preview_procedural.png"


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _world(width: int, prompt: str = PROMPT):
    from worldgen.procedural import ProceduralConfig, build_scene, parse_prompt, synthesize

    spec, _ = parse_prompt(prompt, 0)
    pano, depth, _sem = synthesize(spec, 1.6, ProceduralConfig(width=width, previews=False))
    return build_scene(spec, 1.6), pano, depth


def _truth(scene, position, size: int, dirs):
    from worldgen.procedural import render_view
    from worldgen.splats.views import view_camera

    out = []
    for yaw, pitch in dirs:
        cam = view_camera(yaw, pitch, size, position=np.asarray(position, float))
        out.append((cam, np.clip(render_view(scene, cam)[0], 0, 1)))
    return out


def _psnr_splats(cloud, views) -> float:
    from worldgen.splats.rasterize import render_cloud
    from worldgen.splats.refine import psnr

    return float(np.mean([psnr(render_cloud(cloud, [c], rasterizer="cpu")["rgb"][0], gt) for c, gt in views]))


def _psnr_mesh(mesh, views) -> float:
    from worldgen.evaluation.geometry import render_view
    from worldgen.splats.refine import psnr

    return float(np.mean([psnr(np.clip(render_view(mesh, c), 0, 1), gt) for c, gt in views]))


def step_time(width: int = 632, size: int = 256, repeats: int = 3, threads: int = 1) -> dict:
    """Median wall and CPU seconds of one training step; splat, visible and intersection counts."""
    import torch

    from worldgen.splats.init import init_gaussians
    from worldgen.splats.rasterize import cameras_to_gsplat, rasterize_cpu
    from worldgen.splats.views import view_camera

    _, pano, depth = _world(width)
    cloud = init_gaussians(pano, depth)
    p = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in
         (("m", cloud.means), ("q", cloud.quats), ("s", cloud.log_scales), ("o", cloud.opacity_logits),
          ("c", cloud.sh))}
    vm, K, w, h = cameras_to_gsplat([view_camera(30.0, -10.0, size)])
    vm, K = torch.tensor(vm), torch.tensor(K)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    walls, cpus = [], []
    try:
        for _ in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            img, a, meta = rasterize_cpu(p["m"], p["q"], torch.exp(p["s"]), torch.sigmoid(p["o"]), p["c"], vm, K,
                                         w, h, sh_degree=0, render_mode="RGB+ED")
            (img[..., :3].mean() + img[..., 3].mean() * 0.01 + a.mean()).backward()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    finally:
        torch.set_num_threads(prev)
    return {"wall": float(np.median(walls[1:])), "cpu": float(np.median(cpus[1:])), "n": len(cloud),
            "visible": int(meta["gaussian_ids"].shape[0]), "intersections": meta["n_intersections"], "load": _load()}


def quality(width: int = 1024, preset: str = "balanced", prompt: str = PROMPT, previews: bool = True,
            **overrides) -> dict:
    """Refine a width x width/2 world with ``preset``; PSNRs of init, refined and sheet mesh."""
    from worldgen.mesh.sheet import build_sheet
    from worldgen.splats.init import init_gaussians
    from worldgen.splats.refine import refine_gaussians, with_preset

    scene, pano, depth = _world(width, prompt)
    cloud = init_gaussians(pano, depth)
    cfg = with_preset(preset, **overrides)
    held = _truth(scene, np.zeros(3), 128, [(20.0, 10.0), (110.0, -25.0), (200.0, 30.0), (290.0, -60.0)])
    novel = _truth(scene, [0.5, 0.0, 0.0], 128, [(float(y), -10.0) for y in range(0, 360, 45)])
    load0 = _load()
    t0 = time.perf_counter()
    out, rep = refine_gaussians(cloud, pano, depth, cfg, seed=0)
    secs = time.perf_counter() - t0
    load1 = _load()
    mesh = build_sheet(pano, depth)
    res = {"seconds": secs, "report": rep, "load": f"{load0} at start, {load1} at end",
           "held_init": _psnr_splats(cloud, held), "held_refined": _psnr_splats(out, held),
           "held_mesh": _psnr_mesh(mesh, held),
           "novel_init": _psnr_splats(cloud, novel), "novel_refined": _psnr_splats(out, novel),
           "novel_mesh": _psnr_mesh(mesh, novel)}
    if previews:
        _preview(scene, cloud, out, mesh)
    return res


def _preview(scene, init, refined, mesh, size: int = 192) -> None:
    """Rows: 0.5 m and 1 m to the side (looking back past the capture point at the room);
    columns: ground truth, initial splats, refined splats, sheet mesh."""
    from worldgen.evaluation.geometry import render_view
    from worldgen.io import atomic_write, encode_png
    from worldgen.splats.rasterize import render_cloud

    rows = []
    for dist in (0.5, 1.0):
        cam, gt = _truth(scene, [dist, 0.0, 0.3 * dist], size, [(-25.0, -12.0)])[0]
        tiles = [gt, render_cloud(init, [cam], rasterizer="cpu")["rgb"][0],
                 render_cloud(refined, [cam], rasterizer="cpu")["rgb"][0], np.clip(render_view(mesh, cam), 0, 1)]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for t in tiles], 1))
    img = (np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)
    PREVIEW.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(PREVIEW, encode_png(img))


def run() -> list[dict]:
    rows = []
    s = step_time()
    rows.append({"name": f"training step 256x256, {s['n']} splats (fwd+bwd), 1 thread", "value": s["wall"],
                 "unit": "s", "target": "<= 1.5 s", "ok": s["wall"] <= 1.5,
                 "note": f"{s['cpu']:.2f} s CPU; {s['visible']} visible, {s['intersections']} intersections; "
                         f"{s['load']}"})
    q = quality()
    rep = q["report"]
    rows.append({"name": f"balanced preset on CPU, 1024x512 world ({rep['n_gaussians_in']} splats)",
                 "value": q["seconds"], "unit": "s", "target": "<= 600 s", "ok": q["seconds"] <= 600,
                 "note": f"{rep['iterations']} steps at {rep['view_size']} px, {rep['n_views']} views; {q['load']}"})
    rows.append({"name": "held-out views from the capture point, refined", "value": q["held_refined"], "unit": "dB",
                 "target": ">= 30 dB", "ok": q["held_refined"] >= 30,
                 "note": f"unrefined {q['held_init']:.2f} dB, sheet mesh {q['held_mesh']:.2f} dB"})
    rows.append({"name": "novel views 0.5 m away, refined", "value": q["novel_refined"], "unit": "dB",
                 "target": "> unrefined and > sheet mesh",
                 "ok": q["novel_refined"] > max(q["novel_init"], q["novel_mesh"]),
                 "note": f"unrefined {q['novel_init']:.2f} dB, sheet mesh {q['novel_mesh']:.2f} dB"})
    rows.append({"name": "non-finite steps skipped in the balanced run", "value": rep["skipped_steps"], "unit": "",
                 "target": "0", "ok": rep["skipped_steps"] == 0, "note": ", ".join(rep["nonfinite"]) or "none"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
