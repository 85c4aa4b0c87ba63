#!/usr/bin/env python3
"""The GPU checks, in one run on a lent CUDA machine (the workplace's `device` tool). Never part of CI.

No session so far was lent a GPU, so worldgen's CUDA paths have never run. This script is the one
short, prepared run the brief asks for. Each step is independent: a failure is recorded with its
error and the next step runs.

1. The machine: torch, CUDA, the card and its compute capability.
2. Depth (issue 11): a random-weight model with Depth-Anything-V2-Small's published configuration
   on a 2048x1024 procedural panorama through the `transformers` backend on CUDA (float16, views
   batched): time and peak GPU memory (``benchmarks/bench_depth.py``'s CUDA row).
3. gsplat's kernels: the JIT build's time (``TORCH_CUDA_ARCH_LIST`` and ``MAX_JOBS`` from the
   environment; docs/splats.md "Running on a GPU").
4. Splats: a procedural world at 1024x512, its initial splats refined with gsplat on CUDA (the
   default RefineConfig, ``device="cuda"``): time and the report's figures; then the refined cloud
   drawn through the 8 capture views (256 px) by gsplat and by worldgen's CPU rasterizer, and the
   PSNR between the two (docs/splats.md's GPU/CPU parity target: >= 40 dB).

Writes ``$OUT/device_check.json`` (``./device_check.json`` without ``OUT``) and prints each figure.

Prepare here, once per session (the device image has Python 3.12, torch, transformers, accelerate,
safetensors, scipy, Pillow, ninja, jaxtyping and rich, but no gsplat, and it reaches no index)::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux2014_x86_64 -d .whl gsplat==1.5.3

Run (the device tool's ``run``, ``carry=[".whl"]``, ``timeout_s`` 590; 9.0 is the H100's and H200's
compute capability)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=14 PYTHONUNBUFFERED=1
    timeout 560 python3 tools/device_check.py

Then copy the figures, with the card's name, into docs/benchmarks.md and docs/splats.md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def _machine() -> dict:
    import torch

    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "available": torch.cuda.is_available()}
    if out["available"]:
        out["card"] = torch.cuda.get_device_name(0)
        out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    out["arch_list"] = os.environ.get("TORCH_CUDA_ARCH_LIST")
    out["max_jobs"] = os.environ.get("MAX_JOBS")
    return out


def _depth() -> dict:
    from bench_depth import PROMPTS, _da_v2_small, _model_cuda_rows

    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt(PROMPTS["city"], 0)
    pano, _, _ = synthesize(spec, 1.6, ProceduralConfig(width=2048, previews=False))
    with tempfile.TemporaryDirectory() as tmp:
        _da_v2_small(tmp)
        return {"rows": _model_cuda_rows(tmp, pano)}


def _gsplat_build() -> dict:
    t0 = time.perf_counter()
    from gsplat.cuda._backend import _C  # JIT-compiles the kernels on first import

    return {"seconds": round(time.perf_counter() - t0, 1), "loaded": _C is not None}


def _splats() -> dict:
    import numpy as np
    import torch

    from worldgen.evaluation.views import psnr
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize
    from worldgen.splats.init import init_gaussians
    from worldgen.splats.rasterize import render_cloud
    from worldgen.splats.refine import RefineConfig, refine_gaussians
    from worldgen.splats.views import capture_views

    spec, _ = parse_prompt("a village", 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=1024, previews=False))
    cloud = init_gaussians(pano, depth)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    refined, report = refine_gaussians(cloud, pano, depth, RefineConfig(device="cuda"))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    cams = [v.camera for v in capture_views(pano, depth, 256)]
    gpu = render_cloud(refined, cams, rasterizer="gsplat")["rgb"]
    cpu = render_cloud(refined, cams, rasterizer="cpu")["rgb"]
    per_view = [round(psnr(g, c), 2) for g, c in zip(gpu, cpu)]
    return {
        "refine_seconds": round(seconds, 1),
        "report": {k: v for k, v in report.items() if isinstance(v, (bool, int, float, str))},
        "gpu_vs_cpu_psnr_db": per_view,
        "gpu_vs_cpu_psnr_min_db": min(per_view),
        "parity_target_db": 40.0,
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "finite": bool(np.isfinite(gpu).all()),
    }


def main() -> int:
    results: dict = {}
    for name, step in (("machine", _machine), ("depth", _depth), ("gsplat_build", _gsplat_build), ("splats", _splats)):
        t0 = time.perf_counter()
        try:
            results[name] = step()
        except Exception as e:  # record and go on: one failing step must not hide the others
            results[name] = {"error": f"{e.__class__.__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
        results[name]["step_seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(results[name], default=str)[:2000], flush=True)
    out = Path(os.environ.get("OUT", ".")) / "device_check.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print("wrote", out)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
