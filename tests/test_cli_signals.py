"""Ctrl-C and SIGTERM during each stage: exit 130 / 143 within 2 s, one line, resume byte-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _runfiles import run_outputs

from worldgen.cli.main import main
from worldgen.io import TMP_PREFIX, encode_png
from worldgen.pipeline import MANIFEST

HERE = Path(__file__).parent
ROOT = HERE.parent
# The child runs (_cli_child.py) and the resume here write small previews: their bytes are still
# compared, at a fraction of the default 24-frame fly-through's CPU time.
pytestmark = pytest.mark.usefixtures("small_previews")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("signal_inputs")
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:64, 0:128]
    img = np.stack([xx * 2, yy * 4, (xx + yy) % 256], -1).astype(np.uint8)
    depth = (3.0 + 2.0 * np.sin(xx / 9.0) + rng.uniform(0, 0.01, (64, 128))).astype(np.float32)
    depth[:10] = np.inf
    (d / "pano.png").write_bytes(encode_png(img))
    np.save(d / "depth.npy", depth)
    return d


def _cmd(inputs: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "_cli_child.py"),
        "generate",
        "--panorama",
        str(inputs / "pano.png"),
        "--depth",
        str(inputs / "depth.npy"),
        "--seed",
        "7",
        "--preset",
        "fast",
        "--backend",
        "gaussians=init",
        "--until",
        "mesh",
        "-q",
        "-o",
        str(out),
    ]


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("signal_ref") / "run"
    subprocess.run(_cmd(inputs, out), check=True, timeout=120, cwd=ROOT, capture_output=True)
    return run_outputs(out)


@pytest.mark.parametrize(
    "sig, stage, mode",
    [
        (signal.SIGINT, "panorama", "python"),
        (signal.SIGTERM, "depth", "python"),
        (signal.SIGINT, "gaussians", "stubborn"),  # the stop exception is swallowed: the watchdog ends it
        (signal.SIGTERM, "mesh", "c"),  # inside one long C call: no Python handler can run
    ],
)
def test_signal_stops_fast_and_resumes_byte_identical(
    inputs, reference, tmp_path, monkeypatch, capsys, sig, stage, mode
):
    out, mark = tmp_path / "run", tmp_path / "mark"
    env = dict(
        os.environ,
        WG_SLOW_STAGE=stage,
        WG_SLOW_SECONDS="60",
        WG_MARK=str(mark),
        WG_STUBBORN=str(int(mode == "stubborn")),
        WG_C_CALL=str(int(mode == "c")),
    )
    if mode == "c":
        mark = tmp_path / "mark.c"
    proc = subprocess.Popen(
        _cmd(inputs, out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), "the slowed stage never started"
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        stopped = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig  # 130 / 143
    assert stopped < 2.0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "run the same command again to resume" in lines[0], err
    # What the interrupted run left is either recorded in the manifest, intact, or a temp file.
    m = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).exists() else {"stages": {}}
    assert stage not in m["stages"]
    recorded = {f for e in m["stages"].values() for f in e["files"]}
    for p in out.iterdir():
        assert p.name == MANIFEST or p.name in recorded or p.name.startswith(TMP_PREFIX), p.name
    # The same command again, in this process: `generate` as its console script runs it (a child
    # would spend most of its CPU time importing torch and open3d, four times per module). The
    # reference was made in a child process, so the bytes are still compared across processes.
    monkeypatch.chdir(ROOT)
    assert main(_cmd(inputs, out)[2:]) == 0, capsys.readouterr().err
    assert run_outputs(out) == reference
