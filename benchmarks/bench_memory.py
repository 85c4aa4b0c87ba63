"""Memory guard: each stage's estimated peak resident memory (worldgen/memory.py, decided before
the stage starts) against the peak measured while it ran, on procedural benchmark worlds, each in
a fresh process (`worldgen generate PROMPT --backend gaussians=init`), and on two large user
panoramas (`--panorama FILE --until panorama`: a 16384x8192 bilevel PNG scaled to the fast and
quality working widths, an 8192x4096 RGB PNG). Target: within 30 %.
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


def _files(d: Path) -> list[tuple[str, str, list[str]]]:
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_inputs import _png_1bit

    (d / "huge.png").write_bytes(_png_1bit(16384, 8192))
    Image.new("RGB", (8192, 4096), (50, 100, 150)).save(d / "big.png", compress_level=1)
    out = []
    for name, preset in (("huge.png", "fast"), ("huge.png", "quality"), ("big.png", "quality")):
        out.append((f"{name} {preset}", preset, ["--panorama", str(d / name), "--until", "panorama"]))
    return out


def run() -> list[dict]:
    rows = []
    worst = 0.0
    inputs = tempfile.TemporaryDirectory()
    cases = [(f"{p}, {s}", s, [p, "--seed", "3", "--backend", "gaussians=init"]) for p, s in WORLDS]
    for label, preset, args in cases + _files(Path(inputs.name)):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            load = _load()
            subprocess.run(
                [sys.executable, "-m", "cli", "generate", *args, "--preset", preset, "-q", "-o", str(out)],
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
                    "name": f"{label}, {stage} ({e['backend']}): estimate / measured peak",
                    "value": f"{est:.0f} / {peak:.0f}",
                    "unit": "MB",
                    "target": "within 30 %",
                    "ok": abs(err) <= 0.30,
                    "note": f"{100 * err:+.0f} %; resident at start {mem['start_mb']:.0f} MB; load {load}",
                }
            )
    inputs.cleanup()
    rows.append(
        {"name": "largest estimate error", "value": 100 * worst, "unit": "%", "target": "<= 30", "ok": worst <= 0.3}
    )
    return rows
