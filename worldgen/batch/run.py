"""A batch from start to end: read and check the job file, skip what is finished, run the rest on
an executor, keep ``batch.json`` current."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worldgen.errors import InputError, OutputError

from .jobs import Job, load_jobs
from .local import BatchInterrupted
from .policy import EventFn, Policy
from .state import Ledger, batch_lock, finished_record


@dataclass
class BatchResult:
    """How a batch ended.

    Args:
        root: the batch root (absolute).
        jobs: the jobs, in file order.
        entries: name -> the job's entry in batch.json (status, seconds, attempts, outputs, error).
        interrupted: True when Ctrl-C stopped the batch.
    """

    root: Path
    jobs: list[Job]
    entries: dict[str, dict[str, Any]]
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries.values():
            out[e["status"]] = out.get(e["status"], 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(e["status"] in ("done", "skipped") for e in self.entries.values())


def prepare_root(root: str | os.PathLike) -> Path:
    out = Path(root)
    if out.exists() and not out.is_dir():
        raise OutputError(f"batch root {str(out)!r} is a file; choose a folder with -o")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create batch root {str(out)!r} ({e.strerror}); choose another with -o") from e
    return out.resolve()


def run_batch(
    jobs_file: str | os.PathLike,
    root: str | os.PathLike,
    executor: Any,
    policy: Policy = Policy(),
    on_event: EventFn | None = None,
    on_plan: Any = None,
) -> BatchResult:
    """Run the job file's jobs into ``root`` with ``executor`` (a LocalExecutor or RayExecutor).

    ``on_plan(jobs, skipped_names)`` is called once the file is checked and finished jobs are found.
    Raises JobFileError before anything runs when the file has problems.
    """
    jobs = load_jobs(jobs_file)
    if any(j.gpu == "yes" for j in jobs) and not executor.has_gpu:
        first = next(j for j in jobs if j.gpu == "yes")
        raise InputError(f"{first.source}: job {first.name!r} asks for a GPU (gpu: yes) and the executor has none")
    out = prepare_root(root)
    with batch_lock(out):
        ledger = Ledger(out, str(Path(jobs_file).resolve()), jobs)
        pending: list[Job] = []
        for job in jobs:
            record = finished_record(out, job)
            if record is None:
                pending.append(job)
                continue
            ledger.entries[job.name].update(
                status="skipped",
                seconds=float(record.get("seconds", 0.0)),
                attempts=0,
                outputs=sorted(record["outputs"]),
                log="job.log" if (out / job.folder / "job.log").is_file() else None,
            )
        ledger.flush(force=True)
        if on_plan is not None:
            on_plan(jobs, [j.name for j in jobs if j not in pending])

        def event(kind: str, job: Job, info: dict[str, Any]) -> None:
            if kind == "end":
                fields = {k: info[k] for k in ("status", "seconds", "attempts", "outputs", "error", "log")}
                ledger.update(job.name, **fields)
            elif kind == "start":
                ledger.update(job.name, attempts=info["attempt"])
            if on_event is not None:
                on_event(kind, job, info)

        interrupted = False
        try:
            if pending:
                executor.run(out, pending, policy, event)
        except BatchInterrupted:
            interrupted = True
            for job in pending:
                entry = ledger.entries[job.name]
                if entry["status"] == "pending" and entry["attempts"]:
                    entry.update(status="interrupted", error="stopped by Ctrl-C")
        finally:
            ledger.flush(force=True, finished=not interrupted)
    return BatchResult(out, jobs, ledger.entries, interrupted)
