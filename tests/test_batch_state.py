"""Batch bookkeeping: the skip check, batch.json and locks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from worldgen.batch.jobs import load_jobs
from worldgen.batch.state import Ledger, batch_lock, finished_record, job_lock, write_job_record
from worldgen.errors import OutputError
from worldgen.io import encode_png
from worldgen.pipeline import RunOptions, run_pipeline


@pytest.fixture
def finished(tmp_path):
    """A job whose run (panorama stage of a user panorama) has finished and been recorded."""
    (tmp_path / "pano.png").write_bytes(encode_png(np.full((32, 64, 3), 90, np.uint8)))
    (tmp_path / "jobs.yaml").write_text("jobs:\n  - {name: a, panorama: pano.png, until: panorama}\n")
    (job,) = load_jobs(tmp_path / "jobs.yaml")
    root = tmp_path / "root"
    run = run_pipeline(job.request, root / job.folder, RunOptions(until="panorama"))
    write_job_record(root / job.folder, job, run.manifest, {"seconds": 1.5, "attempts": 1})
    return tmp_path, root, job


def test_finished_job_is_skipped_until_something_changes(finished):
    tmp, root, job = finished
    rec = finished_record(root, job)
    assert rec is not None and rec["seconds"] == 1.5
    assert sorted(rec["outputs"]) == ["manifest.json", "panorama.png"]
    # touching an input (same bytes) re-hashes it and still skips
    pano = tmp / "pano.png"
    os.utime(pano, ns=(1, 1))
    assert finished_record(root, job) is not None
    # other job options: not finished
    (other,) = load_jobs(_rewrite(tmp, "jobs:\n  - {name: a, panorama: pano.png, until: panorama, seed: 5}\n"))
    assert finished_record(root, other) is None
    # a changed output or input: not finished
    out = root / "a" / "panorama.png"
    data = out.read_bytes()
    out.write_bytes(data + b"x")
    assert finished_record(root, job) is None
    out.write_bytes(data)
    assert finished_record(root, job) is not None
    pano.write_bytes(encode_png(np.full((32, 64, 3), 91, np.uint8)))
    assert finished_record(root, job) is None


def test_corrupt_record_means_not_finished(finished):
    _, root, job = finished
    (root / "a" / "job.json").write_text("{not json")
    assert finished_record(root, job) is None


def _rewrite(tmp, text):
    p = tmp / "jobs2.yaml"
    p.write_text(text)
    return p


def test_ledger_writes_the_contract(finished):
    _, root, job = finished
    ledger = Ledger(root, "jobs.yaml", [job], every=1000.0)
    ledger.flush(force=True)
    ledger.update("a", status="done", seconds=2.0, attempts=1, outputs=["manifest.json"])
    data = json.loads((root / "batch.json").read_text())
    assert data["jobs"][0]["status"] == "pending"  # throttled: not rewritten yet
    ledger.flush(force=True, finished=True)
    data = json.loads((root / "batch.json").read_text())
    assert {"format", "jobs_file", "root", "started", "finished", "jobs"} <= set(data)
    (entry,) = data["jobs"]
    assert {"name", "folder", "status", "seconds", "attempts", "outputs", "error"} <= set(entry)
    assert entry["status"] == "done" and data["finished"] is not None and data["root"] == str(root)


def test_locks_exclude_a_second_holder(finished):
    _, root, job = finished
    with job_lock(root, job), pytest.raises(OutputError, match="busy"), job_lock(root, job):
        pass
    with job_lock(root, job):  # released
        pass
    with batch_lock(root), pytest.raises(OutputError, match="busy"), batch_lock(root):
        pass
