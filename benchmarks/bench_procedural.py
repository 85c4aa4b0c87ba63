"""Procedural synthesizer: time and peak memory to build a world and render its panorama, exact
depth and semantic ids ("a pine forest by a lake", seed 0, antialiased), at 2048x1024 (target
<= 10 s on 2 cores, <= 2 GB) and 4096x2048 (must work). Peak memory is the process's peak RSS
during the call (it includes the Python interpreter and imported libraries)."""

from __future__ import annotations

import numpy as np

from worldgen._resources import cpu_count, measure
from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize


def _one(prompt: str, width: int) -> tuple[float, float, bool]:
    spec, _ = parse_prompt(prompt, 0)
    with measure() as u:
        pano, depth, sem = synthesize(spec, 1.6, ProceduralConfig(width=width))
    ok = (pano.width == width and np.array_equal(depth.sky, sem.ids == 0)
          and bool(np.isfinite(depth.depth[~depth.sky]).all()))
    return u.seconds, u.peak_rss / 2**30, ok


def run() -> list[dict]:
    rows = []
    cores = cpu_count()
    for prompt in ("a pine forest by a lake", "a city street at night"):
        s, gb, ok = _one(prompt, 2048)
        rows.append({"name": f"2048x1024 '{prompt}' wall time", "value": round(s, 2), "unit": "s",
                     "target": "<= 10 s", "ok": s <= 10.0, "note": f"{cores} cores usable"})
        rows.append({"name": f"2048x1024 '{prompt}' peak RSS", "value": round(gb, 2), "unit": "GiB",
                     "target": "<= 2 GB", "ok": gb <= 2.0 * 1e9 / 2**30, "note": "" if ok else "output check FAILED"})
    s, gb, ok = _one("snowy mountains at sunset", 4096)
    rows.append({"name": "4096x2048 'snowy mountains at sunset' works", "value": round(s, 2), "unit": "s",
                 "target": "completes", "ok": ok, "note": f"peak RSS {gb:.2f} GiB"})
    return rows
