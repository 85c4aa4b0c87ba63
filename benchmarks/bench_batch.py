"""Batch generation: `fast`-preset jobs at 512x256 on 1 and 2 local workers (throughput and
scaling, target >= 1.7x), the Ray executor against the local one on the same jobs (overhead,
target <= 15 %), and the bookkeeping of a re-run over 10,000 finished jobs (job-file checks, skip
checks, batch.json; target <= 10 s). BENCH_BATCH_JOBS sets the number of throughput jobs (100)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from worldgen.batch import LocalExecutor, Policy, load_jobs, run_batch
from worldgen.batch.state import write_job_record
from worldgen.pipeline import read_manifest

PROMPTS = ("a pine forest by a lake", "snowy mountains at sunset", "a desert canyon", "a night city street")


def _jobs_file(path: Path, n: int, extra: str = "") -> Path:
    lines = ["defaults: {preset: fast, set: {panorama.width: 512}}", "jobs:"]
    for i in range(n):
        lines.append(f"  - {{name: job-{i:05d}, prompt: '{PROMPTS[i % len(PROMPTS)]}', seed: {i}{extra}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _throughput(tmp: Path, n: int) -> list[dict]:
    jobs = _jobs_file(tmp / "jobs.yaml", n)
    rates: dict[str, float] = {}
    seconds: dict[str, float] = {}
    loads: dict[str, str] = {}
    runs = [("local-1", lambda: LocalExecutor(1, gpus=[])), ("local-2", lambda: LocalExecutor(2, gpus=[]))]
    ray_note = ""
    try:
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        from worldgen.batch.ray_executor import RayExecutor

        runs.append(("ray-2", lambda: RayExecutor(cpus_per_job=1.0)))
    except ImportError:
        ray = None
        ray_note = "ray not installed"
    try:
        for label, make in runs:
            root = tmp / label
            ex = make()
            t0 = time.perf_counter()
            result = run_batch(jobs, root, ex, Policy(retries=0))
            seconds[label] = time.perf_counter() - t0
            loads[label] = _load()
            bad = {k: v for k, v in result.counts().items() if k != "done"}
            if bad:
                raise RuntimeError(f"{label}: jobs did not finish: {bad}")
            rates[label] = n / seconds[label] * 60
            shutil.rmtree(root)
    finally:
        if ray is not None:
            ray.shutdown()
    scaling = rates["local-2"] / rates["local-1"]
    rows = [
        {
            "name": f"{n} jobs, 1 local worker",
            "value": rates["local-1"],
            "unit": "jobs/min",
            "target": "",
            "ok": None,
            "note": f"{seconds['local-1']:.0f} s; load average after: {loads['local-1']}",
        },
        {
            "name": f"{n} jobs, 2 local workers",
            "value": rates["local-2"],
            "unit": "jobs/min",
            "target": "",
            "ok": None,
            "note": f"{seconds['local-2']:.0f} s; load average after: {loads['local-2']}",
        },
        {
            "name": "scaling, 2 workers / 1 worker",
            "value": scaling,
            "unit": "x",
            "target": ">= 1.7x",
            "ok": scaling >= 1.7,
            "note": "scaling depends on the load: see the load averages",
        },
    ]
    if "ray-2" in rates:
        overhead = (seconds["ray-2"] / seconds["local-2"] - 1) * 100
        rows.append(
            {
                "name": "Ray executor overhead vs 2 local workers",
                "value": overhead,
                "unit": "%",
                "target": "<= 15 %",
                "ok": overhead <= 15,
                "note": f"local Ray instance, 2 CPUs, started beforehand; {seconds['ray-2']:.0f} s; "
                f"load average after: {loads['ray-2']}",
            }
        )
    else:
        rows.append({"name": "Ray executor overhead", "value": "-", "unit": "", "target": "<= 15 %", "ok": None,
                     "note": ray_note})  # fmt: skip
    return rows


def _bookkeeping(tmp: Path, n: int = 10_000) -> list[dict]:
    # One real finished run; every job's folder holds hard links to its files and its own job.json,
    # so the re-run does what it does for real finished jobs (parse, check, stat, hash manifests).
    jobs_path = _jobs_file(tmp / "big.yaml", n)
    seed = run_batch(_jobs_file(tmp / "one.yaml", 1), tmp / "seed", LocalExecutor(1, gpus=[]), Policy(retries=0))
    assert seed.ok
    src = tmp / "seed" / "job-00000"
    manifest = read_manifest(src)
    files = [p.name for p in src.iterdir() if p.is_file() and p.name not in ("job.json", "job.log")]
    root = tmp / "big"
    for job in load_jobs(jobs_path):
        folder = root / job.folder
        folder.mkdir(parents=True)
        for name in files:
            os.link(src / name, folder / name)
        write_job_record(folder, job, manifest, {"seconds": 1.0, "attempts": 1})
    t0 = time.perf_counter()
    result = run_batch(jobs_path, root, LocalExecutor(2, gpus=[]), Policy(retries=0))
    seconds = time.perf_counter() - t0
    skipped = result.counts().get("skipped", 0)
    return [
        {
            "name": f"re-run over {n:,} finished jobs (check, skip, batch.json)",
            "value": seconds,
            "unit": "s",
            "target": "<= 10 s",
            "ok": seconds <= 10 and skipped == n,
            "note": f"{skipped:,} skipped; load average after: {_load()}",
        }
    ]


def run() -> list[dict]:
    n = int(os.environ.get("BENCH_BATCH_JOBS", "100"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = _bookkeeping(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        rows = _throughput(Path(tmp), n) + rows
    return rows
