"""Procedural synthesizer: time and peak memory to build a world and render its panorama, exact
depth and semantic ids (seed 0, antialiased), at 2048x1024 (target <= 10 s on 2 cores, <= 2 GB)
for the heaviest scenes ("a pine forest by a lake": ~2400 primitives and lake reflections; "a city
street at night": facades, windows and point lights) and at 4096x2048 (must work). Peak memory is
the process's peak RSS during the call (it includes the interpreter and imported libraries). Each
row's note gives the CPU time of the call (all threads) and the 1-minute load average when it
started: on a shared machine the wall time is inflated by whatever else runs."""

from __future__ import annotations

import os
import time

import numpy as np

from worldgen._resources import cpu_count, measure
from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize


def _one(prompt: str, width: int) -> tuple[float, float, bool, str]:
    spec, _ = parse_prompt(prompt, 0)
    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    with measure() as u:
        pano, depth, sem = synthesize(spec, 1.6, ProceduralConfig(width=width))
    cpu = time.process_time() - cpu0
    ok = (
        pano.width == width
        and np.array_equal(depth.sky, sem.ids == 0)
        and bool(np.isfinite(depth.depth[~depth.sky]).all())
    )
    note = f"{cpu_count()} cores usable, CPU {cpu:.1f} s, load {load:.1f} at start"
    return u.seconds, u.peak_rss / 2**30, ok, note


def run() -> list[dict]:
    rows = []
    for prompt in ("a pine forest by a lake", "a city street at night"):
        s, gb, ok, note = _one(prompt, 2048)
        rows.append(
            {
                "name": f"2048x1024 '{prompt}' wall time",
                "value": round(s, 2),
                "unit": "s",
                "target": "<= 10 s",
                "ok": s <= 10.0,
                "note": note,
            }
        )
        rows.append(
            {
                "name": f"2048x1024 '{prompt}' peak RSS",
                "value": round(gb, 2),
                "unit": "GiB",
                "target": "<= 2 GB",
                "ok": gb <= 2.0 * 1e9 / 2**30,
                "note": "" if ok else "output check FAILED",
            }
        )
    s, gb, ok, note = _one("snowy mountains at sunset", 4096)
    rows.append(
        {
            "name": "4096x2048 'snowy mountains at sunset' works",
            "value": round(s, 2),
            "unit": "s",
            "target": "completes",
            "ok": ok,
            "note": f"peak RSS {gb:.2f} GiB; {note}",
        }
    )
    return rows
