"""Splat refinement (issue 5), CPU, PyTorch rasterizer, on procedural worlds with exact ground truth.

Worlds come from worldgen.procedural (seed 0): an indoor one, "a cozy living room interior", and
an outdoor one, "a medieval village square". The synthesizer's panorama and exact depth feed
worldgen.splats.init, and ``render_view`` of the same scene gives exact colour and depth at any
pose. The splats are what the product exports: the ``refine`` backend of the gaussians stage
(worldgen/splats/refine_backend.py) run as the pipeline runs it, pixel splats of footprint 0.35,
the backing layer (one splat per 2x2 block 3 % behind the block's farthest surface), the
hidden-layer splats behind depth edges and the CPU splat budget (600k: the 1024x512 worlds' pixel
splats are merged near the poles); "unrefined" is its ``fast`` output (the same layers, not
refined), "refined" its ``balanced`` output; the time is the whole stage (layers included),
against issue 12's targets: <= 90 s at 1024x512 and <= 3 minutes at 2048x1024 (the village,
timed only; quality is scored at 1024x512). "Full optimisation" is the balanced CPU preset as it
was before issue 12 (300 steps at the base learning rates, ~5 minutes), run on the same layers:
the balanced preset must keep >= 90 % of its novel-view gain over the unrefined splats.
"step" = one 256x256 forward + backward (RGB + expected depth) on a ~200k-splat room
(632x316 panorama); wall and process CPU seconds are reported (CPU seconds approximate an idle
machine's wall time at 1 thread; the balanced stage's helper process, which bins half of every
render on the second core, is reported beside them: the stage's own CPU seconds plus its idle
wait estimate the wall time alone). Views are
90° and 256 px (the splats' own resolution: a quarter of the panorama width); the notes give the
same measures at 128 px. "held-out" = 4 views from the capture point in directions no training
view uses; "novel 0.5 m / 1 m" = 8 horizontal views that far to the side. PSNR is the mean over
views. Holes = share of pixels with a true surface where the render's alpha < 0.5; floaters =
share of pixels where the render's expected depth is > 10 % nearer than the true surface (or than
the world's farthest surface over the sky); see worldgen.evaluation.views. The sheet mesh
(worldgen.mesh.sheet, default config) is ray-cast at the same poses with
worldgen.evaluation.geometry.render_view (holes stay magenta, as a viewer would see them).
Previews: docs/images/splats/preview_<world>.png. The load average (1 min) is in each note: on a
shared machine every time is inflated.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

PROMPT = "a cozy living room interior"
PREVIEW = Path(__file__).resolve().parent.parent / "docs" / "images" / "splats" / "preview.png"


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _world(width: int, prompt: str = PROMPT):
    from worldgen.procedural import ProceduralConfig, build_scene, parse_prompt, synthesize

    spec, _ = parse_prompt(prompt, 0)
    pano, depth, _sem = synthesize(spec, 1.6, ProceduralConfig(width=width, previews=False))
    return build_scene(spec, 1.6), pano, depth


def _truth(scene, position, size: int, dirs):
    """[(camera, true sRGB [h, w, 3], true depth [h, w] with +inf sky)] at ``position`` for (yaw, pitch) in degrees."""
    from worldgen.procedural import render_view
    from worldgen.splats.views import view_camera

    out = []
    for yaw, pitch in dirs:
        cam = view_camera(yaw, pitch, size, position=np.asarray(position, float))
        rgb, depth, _ = render_view(scene, cam)
        out.append((cam, np.clip(rgb, 0, 1), depth))
    return out


def _score_splats(cloud, views, far: float) -> dict:
    """Mean PSNR, holes and floaters of splat renders at ``views``."""
    from worldgen.evaluation.views import holes_and_floaters, psnr
    from worldgen.splats.rasterize import render_cloud

    p, h, f = [], [], []
    for cam, gt, gt_depth in views:
        r = render_cloud(cloud, [cam], rasterizer="cpu")
        p.append(psnr(r["rgb"][0], gt))
        hf = holes_and_floaters(r["depth"][0], r["alpha"][0], gt_depth, far=far)
        h.append(hf["holes"])
        f.append(hf["floaters"])
    return {"psnr": float(np.mean(p)), "holes": float(np.mean(h)), "floaters": float(np.mean(f))}


def _psnr_mesh(mesh, views) -> float:
    from worldgen.evaluation.geometry import render_view
    from worldgen.evaluation.views import psnr

    return float(np.mean([psnr(np.clip(render_view(mesh, c), 0, 1), gt) for c, gt, _ in views]))


def step_time(width: int = 632, size: int = 256, repeats: int = 3, threads: int = 1) -> dict:
    """Median wall and CPU seconds of one training step; splat, visible and intersection counts."""
    import torch

    from worldgen.splats.init import init_gaussians
    from worldgen.splats.rasterize import cameras_to_gsplat, rasterize_cpu
    from worldgen.splats.views import view_camera

    _, pano, depth = _world(width)
    cloud = init_gaussians(pano, depth)
    p = {
        k: torch.tensor(np.asarray(v), requires_grad=True)
        for k, v in (
            ("m", cloud.means),
            ("q", cloud.quats),
            ("s", cloud.log_scales),
            ("o", cloud.opacity_logits),
            ("c", cloud.sh),
        )
    }
    vm, K, w, h = cameras_to_gsplat([view_camera(30.0, -10.0, size)])
    vm, K = torch.tensor(vm), torch.tensor(K)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    walls, cpus = [], []
    try:
        for _ in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            img, a, meta = rasterize_cpu(
                p["m"],
                p["q"],
                torch.exp(p["s"]),
                torch.sigmoid(p["o"]),
                p["c"],
                vm,
                K,
                w,
                h,
                sh_degree=0,
                render_mode="RGB+ED",
            )
            (img[..., :3].mean() + img[..., 3].mean() * 0.01 + a.mean()).backward()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    finally:
        torch.set_num_threads(prev)
    return {
        "wall": float(np.median(walls[1:])),
        "cpu": float(np.median(cpus[1:])),
        "n": len(cloud),
        "visible": int(meta["gaussian_ids"].shape[0]),
        "intersections": meta["n_intersections"],
        "load": _load(),
    }


def quality(
    prompt: str = PROMPT,
    tag: str = "room",
    width: int = 1024,
    preset: str = "balanced",
    previews: bool = True,
    reference: bool = False,
    **overrides,
) -> dict:
    """The refine backend's ``preset`` and ``fast`` outputs for a width x width/2 world; scores of both
    (keys ``*_refined_*`` and ``*_init_*``) and of the sheet mesh. ``overrides`` are the backend's
    config fields (``RefineStageConfig``).

    Views are 90° at the splats' own resolution (width / 4 pixels) and at half of it: held-out
    directions from the capture point, and 8 horizontal directions 0.5 m and 1 m to the side.

    With ``reference``, also the full optimisation the balanced CPU preset replaced (``REFERENCE``:
    300 steps at the base learning rates, ~5 minutes before issue 12), scored at full size only
    (keys ``*_reference_*``, ``reference_seconds``): the share of its novel-view gain over the
    unrefined splats that the preset keeps is issue 12's quality bar for the fast refinement.
    """
    from worldgen.mesh.sheet import build_sheet
    from worldgen.registry import Request, StageContext, get_backend

    scene, pano, depth = _world(width, prompt)
    far = float(depth.depth[depth.valid].max())
    # What the product exports: the refine backend's own path (pixel splats of footprint 0.35,
    # the backing layer, the hidden-layer splats, the CPU splat budget; then refinement).
    # "Unrefined" is its `fast` output (the same layers, not refined), as `make demo` exports it.
    backend = get_backend("gaussians", "refine")
    inputs = {"panorama": pano, "depth": depth}
    fast = backend.make_config(
        "fast", {k: v for k, v in overrides.items() if k not in ("iterations", "cpu_iterations")}
    )
    cloud = backend.run(StageContext("gaussians", inputs, Request(), fast)).artifacts["gaussians"]
    load0 = _load()
    t0, c0 = time.perf_counter(), time.process_time()
    res_b = backend.run(StageContext("gaussians", inputs, Request(), backend.make_config(preset, overrides)))
    out, rep = res_b.artifacts["gaussians"], res_b.report
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    load1 = _load()
    ref = None
    if reference:
        t0 = time.perf_counter()
        ref_cfg = backend.make_config(preset, {**overrides, **REFERENCE})
        ref = backend.run(StageContext("gaussians", inputs, Request(), ref_cfg)).artifacts["gaussians"]
        ref_secs = time.perf_counter() - t0
    mesh = build_sheet(pano, depth)
    res = {
        "seconds": secs,
        "cpu_seconds": cpu,
        "report": rep,
        "load": f"{load0} at start, {load1} at end",
        "width": width,
    }
    held_dirs = [(20.0, 10.0), (110.0, -25.0), (200.0, 30.0), (290.0, -60.0)]
    around = [(float(y), -10.0) for y in range(0, 360, 45)]
    for size, suffix in ((width // 4, ""), (width // 8, "_half")):
        for name, pos, dirs in (
            ("held", [0.0, 0.0, 0.0], held_dirs),
            ("novel", [0.5, 0.0, 0.0], around),
            ("novel1", [1.0, 0.0, 0.0], around),
        ):
            views = _truth(scene, pos, size, dirs)
            clouds = [("init", cloud), ("refined", out)]
            if ref is not None and not suffix and name != "held":
                clouds.append(("reference", ref))
            for which, c in clouds:
                for k, v in _score_splats(c, views, far).items():
                    res[f"{name}{suffix}_{which}_{k}"] = v
            res[f"{name}{suffix}_mesh_psnr"] = _psnr_mesh(mesh, views)
    if ref is not None:
        res["reference_seconds"] = ref_secs
    if previews:
        _preview(scene, cloud, out, mesh, PREVIEW.with_name(f"preview_{tag}.png"))
    return res


def stage_time(prompt: str, width: int, preset: str = "balanced") -> dict:
    """Wall and process CPU seconds of the refine backend's ``preset`` (the whole gaussians stage, as
    the pipeline runs it) on a width x width/2 world, its report and the load average."""
    from worldgen.registry import Request, StageContext, get_backend

    _scene, pano, depth = _world(width, prompt)
    backend = get_backend("gaussians", "refine")
    ctx = StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(), backend.make_config(preset))
    load0 = _load()
    t0, c0 = time.perf_counter(), time.process_time()
    rep = backend.run(ctx).report
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "report": rep,
        "load": f"{load0} at start, {_load()} at end",
    }


def _preview(scene, init, refined, mesh, path: Path, size: int = 192) -> None:
    """Rows: 0.5 m and 1 m to the side (looking back past the capture point); columns: ground
    truth, initial splats, refined splats, sheet mesh (holes magenta)."""
    from worldgen.evaluation.geometry import render_view
    from worldgen.io import atomic_write, encode_png
    from worldgen.splats.rasterize import render_cloud

    rows = []
    for dist in (0.5, 1.0):
        cam, gt, _ = _truth(scene, [dist, 0.0, 0.3 * dist], size, [(-25.0, -12.0)])[0]
        tiles = [
            gt,
            render_cloud(init, [cam], rasterizer="cpu")["rgb"][0],
            render_cloud(refined, [cam], rasterizer="cpu")["rgb"][0],
            np.clip(render_view(mesh, cam), 0, 1),
        ]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for t in tiles], 1))
    img = (np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, encode_png(img))


WORLDS = ((PROMPT, "room"), ("a medieval village square", "village"))
# The balanced CPU preset before issue 12 (300 steps at the base learning rates): the reference
# whose novel-view gain the fast preset must keep (>= 90 %).
REFERENCE = {"cpu_iterations": 300, "cpu_lr_scale": 1.0}


def _helper(rep: dict) -> str:
    """The helper process's share (refine's cpu_workers): its CPU seconds and how long the stage
    would have waited for it on an idle machine (the CPU seconds plus that estimate the wall time
    alone)."""
    if "cpu_helper_seconds" not in rep:
        return ", no helper process"
    return f" + helper {rep['cpu_helper_seconds']:.1f} s CPU (idle-machine wait {rep['cpu_helper_idle_wait']:.1f} s)"


def _quality_rows(q: dict, tag: str) -> list[dict]:
    rep = q["report"]
    pct = lambda x: f"{100 * x:.2f} %"  # noqa: E731
    rows = [
        {
            "name": f"{tag}: balanced preset on CPU (gaussians stage), {q['width']}x{q['width'] // 2} world "
            f"({rep['n_gaussians_init']} pixel + {rep['n_gaussians_backing']} backing + "
            f"{rep['n_gaussians_backfill']} hidden-layer splats)",
            "value": q["seconds"],
            "unit": "s",
            "target": "<= 90 s",
            "ok": q["seconds"] <= 90,
            "note": f"{q['cpu_seconds']:.1f} s CPU{_helper(rep)}; {rep['iterations']} steps at {rep['view_size']} px, "
            f"{rep['n_views']} views, colour solve "
            f"{rep.get('colour_psnr_init', float('nan')):.1f} -> {rep.get('colour_psnr_final', float('nan')):.1f}"
            f" dB on the capture views; {q['load']}",
        },
        {
            "name": f"{tag}: held-out views from the capture point, refined",
            "value": q["held_refined_psnr"],
            "unit": "dB",
            "target": ">= 30 dB",
            "ok": q["held_refined_psnr"] >= 30,
            "note": f"unrefined {q['held_init_psnr']:.2f} dB, sheet mesh {q['held_mesh_psnr']:.2f} dB; at half "
            f"resolution refined {q['held_half_refined_psnr']:.2f}, unrefined {q['held_half_init_psnr']:.2f}, "
            f"mesh {q['held_half_mesh_psnr']:.2f} dB",
        },
    ]
    for key, label in (("novel", "0.5 m"), ("novel1", "1 m")):
        r, i, m = q[f"{key}_refined_psnr"], q[f"{key}_init_psnr"], q[f"{key}_mesh_psnr"]
        rows.append(
            {
                "name": f"{tag}: novel views {label} away, refined",
                "value": r,
                "unit": "dB",
                "target": "> unrefined and > sheet mesh",
                "ok": r > max(i, m),
                "note": f"unrefined {i:.2f} dB, sheet mesh {m:.2f} dB; at half resolution refined "
                f"{q[key + '_half_refined_psnr']:.2f}, unrefined {q[key + '_half_init_psnr']:.2f}, "
                f"mesh {q[key + '_half_mesh_psnr']:.2f} dB",
            }
        )
        rows.append(
            {
                "name": f"{tag}: holes / floaters {label} away, refined",
                "value": 100 * q[f"{key}_refined_holes"],
                "unit": "% holes",
                "target": "<= unrefined",
                "ok": q[f"{key}_refined_holes"] <= q[f"{key}_init_holes"]
                and q[f"{key}_refined_floaters"] <= q[f"{key}_init_floaters"],
                "note": f"floaters {pct(q[key + '_refined_floaters'])}; unrefined: holes "
                f"{pct(q[key + '_init_holes'])}, floaters {pct(q[key + '_init_floaters'])}",
            }
        )
    if "reference_seconds" in q:
        for key, label in (("novel", "0.5 m"), ("novel1", "1 m")):
            r, i, ref = q[f"{key}_refined_psnr"], q[f"{key}_init_psnr"], q[f"{key}_reference_psnr"]
            share = (r - i) / (ref - i) if ref > i else float("nan")
            rows.append(
                {
                    "name": f"{tag}: share of the full optimisation's novel-view gain kept, {label}",
                    "value": round(100 * share, 1),
                    "unit": "%",
                    "target": ">= 90 %",
                    "ok": bool(share >= 0.9),
                    "note": f"balanced {r:.2f} dB, unrefined {i:.2f} dB, full optimisation (300 steps, base "
                    f"learning rates) {ref:.2f} dB in {q['reference_seconds']:.0f} s",
                }
            )
    rows.append(
        {
            "name": f"{tag}: non-finite steps skipped",
            "value": rep["skipped_steps"],
            "unit": "",
            "target": "0",
            "ok": rep["skipped_steps"] == 0,
            "note": ", ".join(rep["nonfinite"]) or "none",
        }
    )
    return rows


def run() -> list[dict]:
    rows = []
    s = step_time()
    rows.append(
        {
            "name": f"training step 256x256, {s['n']} splats (fwd+bwd), 1 thread",
            "value": s["wall"],
            "unit": "s",
            "target": "<= 1.5 s",
            "ok": s["wall"] <= 1.5,
            "note": f"{s['cpu']:.2f} s CPU; {s['visible']} visible, {s['intersections']} intersections; {s['load']}",
        }
    )
    for prompt, tag in WORLDS:
        rows += _quality_rows(quality(prompt, tag, reference=True), tag)
    prompt, tag = WORLDS[1]
    t = stage_time(prompt, 2048)
    rep = t["report"]
    rows.append(
        {
            "name": f"{tag}: balanced preset on CPU (gaussians stage), 2048x1024 world ({rep['n_gaussians_init']} "
            f"pixel + {rep['n_gaussians_backing']} backing + {rep['n_gaussians_backfill']} hidden-layer splats)",
            "value": t["seconds"],
            "unit": "s",
            "target": "<= 180 s",
            "ok": t["seconds"] <= 180,
            "note": f"{t['cpu_seconds']:.1f} s CPU{_helper(rep)}; {rep['iterations']} steps at {rep['view_size']} "
            f"px, {rep['n_views']} views; quality is scored at 1024x512 above; {t['load']}",
        }
    )
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
