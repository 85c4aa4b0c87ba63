"""The local executor on a real batch: crashes, running out of memory, timeouts, bad inputs and
hostile names cost only their own job; retries; models stay loaded between a worker's jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from worldgen.batch import LocalExecutor, Policy, run_batch
from worldgen.batch.jobs import load_jobs
from worldgen.batch.local import _Queued, _Slot
from worldgen.batch.state import finished_record

sys.path.insert(0, str(Path(__file__).parent))
import _batch_plugin  # noqa: E402  (the test backends, here and in every worker)

PLUGINS = ("_batch_plugin",)


@pytest.fixture(autouse=True)
def batch_test_backends():
    _batch_plugin.register()
    yield
    _batch_plugin.unregister()


def _files(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_failures_stay_isolated_and_good_jobs_finish(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"""
defaults: {{preset: fast, until: panorama, prompt: x}}
jobs:
  - {{name: m1, seed: 1, backend: {{panorama: test_model}}}}
  - {{name: m2, seed: 2, backend: {{panorama: test_model}}}}
  - {{name: m3, seed: 3, backend: {{panorama: test_model}}}}
  - {{name: crash, backend: {{panorama: test_crash}}}}
  - {{name: flaky, backend: {{panorama: test_flaky}}, set: {{panorama.marker: "{tmp_path / "marker"}"}}}}
  - {{name: oom, backend: {{panorama: test_memory}}}}
  - {{name: corrupt, prompt: null, panorama: corrupt.png}}
  - {{name: "../../escape", seed: 4, backend: {{panorama: test_model}}}}
  - {{name: "/etc/evil", seed: 5, backend: {{panorama: test_model}}}}
  - {{name: sleepy, backend: {{panorama: test_sleep}}, set: {{panorama.seconds: 60}}, timeout: 5}}
"""
    )
    before = _files(tmp_path)
    root = tmp_path / "root"
    events = []
    result = run_batch(
        jobs,
        root,
        LocalExecutor(2, gpus=[], plugins=PLUGINS),
        Policy(retries=1, backoff=0.1),
        on_event=lambda kind, job, info: events.append((kind, job.name, info)),
    )
    e = result.entries
    status = {n: (x["status"], x["attempts"]) for n, x in e.items()}
    assert status == {
        "m1": ("done", 1),
        "m2": ("done", 1),
        "m3": ("done", 1),
        "crash": ("failed", 2),
        "flaky": ("done", 2),
        "oom": ("failed", 2),
        "corrupt": ("failed", 1),  # a bad input is not retried
        "../../escape": ("done", 1),
        "/etc/evil": ("done", 1),
        "sleepy": ("timeout", 1),
    }
    assert "SIGKILL" in e["crash"]["error"] and "out of memory" in e["oom"]["error"]
    assert "the driver saw: the worker process died from SIGKILL" in (root / "crash" / "job.log").read_text()
    assert "corrupt" in e["corrupt"]["error"] and "timeout of 5 s" in e["sleepy"]["error"]
    assert not result.ok
    # Nothing outside the root was written; hostile names became plain folders in it.
    new = {p for p in _files(tmp_path) - before if root not in p.parents}
    assert new == {tmp_path / "marker"}  # the flaky backend's own note
    assert {e["../../escape"]["folder"], e["/etc/evil"]["folder"]} == {"escape", "etc_evil"}
    assert (root / "escape" / "panorama.png").is_file()
    # batch.json holds the same story
    data = json.loads((root / "batch.json").read_text())
    assert {j["name"]: (j["status"], j["attempts"]) for j in data["jobs"]} == status
    assert data["finished"] and data["jobs"][0]["outputs"] == ["manifest.json", "panorama.png"]
    # A worker's second job found the model loaded: m3 went to a worker that had run m1 or m2.
    loads = {n: json.loads((root / n / "job.json").read_text())["model_loads"] for n in ("m1", "m2", "m3")}
    assert loads["m3"] == 0 and loads["m1"] + loads["m2"] == 2
    assert any(k == "retry" and n == "flaky" for k, n, _ in events)
    # What a re-run would skip: exactly the finished jobs.
    finished = {j.name for j in load_jobs(jobs) if finished_record(root, j) is not None}
    assert finished == {"m1", "m2", "m3", "flaky", "../../escape", "/etc/evil"}


def test_gpu_jobs_go_to_gpu_workers_only(tmp_path):
    jobs_file = tmp_path / "g.yaml"
    jobs_file.write_text("jobs:\n  - {name: g, prompt: x, gpu: yes}\n  - {name: c, prompt: x, gpu: no}\n")
    g, c = load_jobs(jobs_file)
    ex = LocalExecutor(2, gpus=["0"])
    ex.queue = [_Queued(g, 1, 0.0), _Queued(c, 1, 0.0)]
    ex.slots = [_Slot(0, "0", proc=object()), _Slot(1, None, proc=object())]
    assert ex._pick(ex.slots[1], 1.0).job is c  # a CPU worker never takes a gpu: yes job
    assert ex._pick(ex.slots[0], 1.0).job is g
    ex.queue = [_Queued(c, 1, 0.0)]
    assert ex._pick(ex.slots[0], 1.0) is None  # a CPU job waits for the idle CPU worker
    ex.slots[1].item = ex.queue[0]
    assert ex._pick(ex.slots[0], 1.0).job is c  # ... unless that one is busy
    ex.queue = [_Queued(g, 1, 5.0)]
    assert ex._pick(ex.slots[0], 1.0) is None  # a retry waits for its backoff
