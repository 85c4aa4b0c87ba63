"""Memory guard: each stage's estimated peak resident memory (worldgen/memory.py, decided before
the stage starts) against the peak measured while it ran, on procedural benchmark worlds, each in
a fresh process (`worldgen generate PROMPT --backend gaussians=init`). Target: within 30 %.
Both figures are the whole process's resident memory (estimate = resident at the stage's start
+ the stage's estimated increase), as the manifest records them side by side."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

WORLDS = [
    ("a pine forest by a lake", "fast"),
    ("a quiet village square", "fast"),
    ("a pine forest by a lake", "balanced"),
    ("a quiet village square", "balanced"),
]


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run() -> list[dict]:
    rows = []
    worst = 0.0
    for prompt, preset in WORLDS:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            load = _load()
            subprocess.run(
                [sys.executable, "-m", "cli", "generate", prompt, "--seed", "3", "--preset", preset]
                + ["--backend", "gaussians=init", "-q", "-o", str(out)],
                check=True,
                cwd=Path(__file__).resolve().parent.parent,
                capture_output=True,
            )
            m = json.loads((out / "manifest.json").read_text())
        for stage, e in m["stages"].items():
            mem = e.get("memory") or {}
            est, peak = mem.get("estimate_mb"), mem.get("peak_mb")
            if est is None or peak is None:
                continue
            err = (est - peak) / peak
            worst = max(worst, abs(err))
            rows.append(
                {
                    "name": f"{prompt}, {preset}, {stage} ({e['backend']}): estimate / measured peak",
                    "value": f"{est:.0f} / {peak:.0f}",
                    "unit": "MB",
                    "target": "within 30 %",
                    "ok": abs(err) <= 0.30,
                    "note": f"{100 * err:+.0f} %; resident at start {mem['start_mb']:.0f} MB; load {load}",
                }
            )
    rows.append(
        {"name": "largest estimate error", "value": 100 * worst, "unit": "%", "target": "<= 30", "ok": worst <= 0.3}
    )
    return rows
