"""`worldgen batch`: exit codes, the whole file checked first, and a batch stopped mid-job that a
re-run completes without redoing anything else."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _proc import sigint_default

from worldgen.cli.main import main

HERE = Path(__file__).parent


def test_bad_job_file_runs_nothing(tmp_path, capsys):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("jobs:\n  - {name: a, prompt: x, preset: fastest}\n  - {name: b, image: nope.jpg}\n")
    assert main(["batch", str(jobs), "-o", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    assert f"{jobs}:2: job 'a': field 'preset'" in err and f"{jobs}:3: job 'b': field 'image'" in err
    assert "nothing was run" in err and not (tmp_path / "root").exists()


def test_check_counts_jobs(tmp_path, capsys):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("name,prompt\na,a forest\nb,a lake\n")
    assert main(["batch", str(jobs), "-o", str(tmp_path / "root"), "--check"]) == 0
    assert "2 jobs, all valid; 0 already finished, 2 to run" in capsys.readouterr().err
    assert main(["batch", str(jobs), "-o", str(tmp_path), "--executor", "nope"]) == 2


def _batch(args: list[str], **kw) -> subprocess.Popen:
    cmd = [sys.executable, str(HERE / "_batch_driver.py"), "batch", *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default, **kw
    )


@pytest.mark.slow
def test_interrupted_batch_resumes_and_redoes_nothing_else(tmp_path):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        """
defaults: {preset: fast, set: {panorama.width: 128}}
jobs:
  - {name: forest, prompt: a pine forest, seed: 1, until: depth}
  - {name: lake, prompt: a lake at dawn, seed: 2, until: depth}
  - {name: hills, prompt: snowy hills, seed: 3, backend: {depth: test_slow}, set: {depth.seconds: 3}}
"""
    )
    # forest and lake only have to finish before the stop and be skipped after it, which does not
    # depend on how far they run: they stop after depth (two whole worlds cost most of this test's
    # CPU time). hills, the job that is interrupted and resumed, still builds its whole world.
    root = tmp_path / "root"
    args = [str(jobs), "-o", str(root), "--workers", "2", "--retries", "0"]
    proc = _batch(args)
    manifest = root / "hills" / "manifest.json"
    deadline = time.monotonic() + 120
    # Stop the batch (as Ctrl-C does) once the slow job has finished its panorama stage.
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if "panorama" in json.loads(manifest.read_text())["stages"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    first = {j["name"]: j["status"] for j in json.loads((root / "batch.json").read_text())["jobs"]}
    assert first["hills"] == "interrupted"
    done_before = {n for n, s in first.items() if s == "done"}
    assert done_before  # hills started on a worker that one of them had freed
    stamps = {n: (root / n / "manifest.json").stat().st_mtime_ns for n in done_before}

    proc = _batch(args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().endswith("batch.json")
    second = {j["name"]: j for j in json.loads((root / "batch.json").read_text())["jobs"]}
    assert second["hills"]["status"] == "done"
    for n in done_before:  # finished jobs were skipped, their folders untouched
        assert second[n]["status"] == "skipped"
        assert (root / n / "manifest.json").stat().st_mtime_ns == stamps[n]
    hills = json.loads((root / "hills" / "manifest.json").read_text())
    assert hills["stages"]["panorama"]["cached"] is True  # resumed from its cached stage
    assert (root / "hills" / "world.glb").is_file()
    assert "hills" in err and "done" in err  # the final table
