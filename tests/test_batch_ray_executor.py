"""The Ray executor on a local Ray instance (2 CPUs): a real batch, failures included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from worldgen.batch import Policy, load_jobs, run_batch
from worldgen.batch.state import finished_record

ray = pytest.importorskip("ray")

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _batch_plugin  # noqa: E402


@pytest.fixture(autouse=True)
def batch_test_backends():
    _batch_plugin.register()
    yield
    _batch_plugin.unregister()


@pytest.fixture
def local_ray():
    ray.init(
        address="local",  # a new instance, even where `ray start` left a cluster to connect to
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}},  # the test backends, for Ray's workers
    )
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_batch_with_failures(tmp_path, local_ray):
    from worldgen.batch.ray_executor import RayExecutor

    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        """
defaults: {preset: fast, until: panorama, prompt: x}
jobs:
  - {name: m1, seed: 1, backend: {panorama: test_model}}
  - {name: m2, seed: 2, backend: {panorama: test_model}}
  - {name: crash, backend: {panorama: test_crash}}
  - {name: corrupt, prompt: null, panorama: corrupt.png}
  - {name: "../../out", seed: 3, backend: {panorama: test_model}}
  - {name: sleepy, backend: {panorama: test_sleep}, set: {panorama.seconds: 60}, timeout: 5}
"""
    )
    root = tmp_path / "root"
    ex = RayExecutor(plugins=("_batch_plugin",))
    assert ex.slots == 2 and not ex.has_gpu
    result = run_batch(jobs, root, ex, Policy(retries=1, backoff=0.1))
    status = {n: (e["status"], e["attempts"]) for n, e in result.entries.items()}
    assert status == {
        "m1": ("done", 1),
        "m2": ("done", 1),
        "crash": ("failed", 2),
        "corrupt": ("failed", 1),
        "../../out": ("done", 1),
        "sleepy": ("timeout", 1),
    }
    assert "corrupt" in result.entries["corrupt"]["error"] and "died" in result.entries["crash"]["error"]
    assert (root / "out" / "panorama.png").is_file() and not (tmp_path / "out").exists()
    data = json.loads((root / "batch.json").read_text())
    assert [j["status"] for j in data["jobs"]] == [s for s, _ in status.values()]
    # What a re-run would skip: the finished jobs (their job.json records were written on the Ray workers).
    finished = {j.name for j in load_jobs(jobs) if finished_record(root, j) is not None}
    assert finished == {"m1", "m2", "../../out"}
