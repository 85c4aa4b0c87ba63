"""Running one job in the current process, and the long-lived local worker process.

:func:`execute_job` is what every executor runs: it takes the job's folder lock, sends the
process's output and logs to the folder's ``job.log``, runs :func:`worldgen.pipeline.run_pipeline`
in-process (so models cached by :mod:`worldgen.modelcache` stay loaded for the next job) and writes
``job.json``. It returns a plain result and never raises for a job's own failure.

``python -m worldgen.batch.worker ROOT [--import MODULE ...]`` is a local worker: it reads one job
per line (JSON) on stdin and answers with JSON lines (``start``, ``progress``, ``result``) on
its original stdout; anything the job prints goes to the job's log instead. Nothing it reads is
unpickled.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worldgen.errors import InputError
from worldgen.modelcache import model_cache_stats

from .jobs import Job
from .state import JOB_LOG, Busy, job_dir, job_lock, now_iso, write_job_record

ProgressFn = Callable[[str, float, str], None]


def execute_job(root: str | os.PathLike, job: Job, attempt: int, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run ``job`` into ``root/job.folder``; returns ``{"status": "done"|"failed", "seconds", "outputs",
    "error", "retry", "restart", "model_loads", "log"}`` (``retry``: worth another attempt; ``restart``:
    this process should not run more jobs, e.g. after running out of memory)."""
    from worldgen.pipeline import run_pipeline

    t0 = time.perf_counter()
    loads0 = model_cache_stats()["loads"]
    result: dict[str, Any] = {"status": "failed", "outputs": [], "error": None, "retry": False, "restart": False}
    root = Path(root).resolve()
    try:
        folder = job_dir(root, job)
        with job_lock(root, job):
            folder.mkdir(parents=True, exist_ok=True)
            with _job_log(folder / JOB_LOG, job, attempt) as log:
                result["log"] = JOB_LOG
                try:
                    run = run_pipeline(job.request, folder, job.run_options(), progress=progress)
                    seconds = time.perf_counter() - t0
                    extra = {"seconds": round(seconds, 3), "attempts": attempt}
                    extra["model_loads"] = model_cache_stats()["loads"] - loads0
                    record = write_job_record(folder, job, run.manifest, extra)
                    result.update(status="done", outputs=sorted(record["outputs"]), model_loads=extra["model_loads"])
                    _write_report(folder, log)
                    print(f"done in {seconds:.1f} s", file=log, flush=True)
                except MemoryError:
                    result.update(
                        error="ran out of memory; run fewer workers (--workers) or a lighter preset",
                        retry=True,
                        restart=True,
                    )
                    print(result["error"], file=log, flush=True)
                except InputError as e:
                    result["error"] = _one_line(e)
                    print(f"error: {e}", file=log, flush=True)
                except Exception as e:  # a job's failure must never end the worker or the batch
                    result.update(error=f"{type(e).__name__}: {_one_line(e)}", retry=True)
                    traceback.print_exc(file=log)
                    log.flush()
    except Busy as e:  # a worker of an earlier, killed batch may still be finishing this job
        result.update(error=_one_line(e), retry=True)
    except InputError as e:  # the folder escapes the root
        result["error"] = _one_line(e)
    except OSError as e:
        result.update(error=f"cannot write the job folder ({e.strerror}: {e.filename})", retry=True)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    result.setdefault("model_loads", model_cache_stats()["loads"] - loads0)
    return result


def _write_report(folder: Path, log) -> None:
    """The job's report.html and previews, as ``worldgen generate`` writes them, in this worker, so
    a batch's reports are made in parallel with its jobs. A report that fails is noted in job.log
    and never fails the job: the world is built."""
    from worldgen.errors import WorldgenError
    from worldgen.report.html import write_report

    try:
        write_report(folder, validate=False)
    except WorldgenError as e:
        print(f"no report: {_one_line(e)}", file=log, flush=True)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def _job_log(path: Path, job: Job, attempt: int):
    """Send this process's stdout, stderr and log records to ``path`` (appended) for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = open(path, "a", buffering=1)  # noqa: SIM115 - closed below, after the descriptors are restored
    print(f"== {now_iso()} job {job.name!r} ({job.source}) attempt {attempt}, pid {os.getpid()}", file=log)
    saved = os.dup(1), os.dup(2)
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    old_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield log
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
        log.close()


def import_plugins(modules: list[str]) -> None:
    """Import modules that register extra backends (given by the program that starts the batch,
    never by a job file)."""
    for mod in modules:
        importlib.import_module(mod)


def main(argv: list[str]) -> int:
    """The local worker process (see the module docstring)."""
    root = argv[0]
    plugins = [argv[i + 1] for i, a in enumerate(argv) if a == "--import"]
    # Keep the original stdout for messages to the batch driver; point fd 1 at stderr so that
    # a print() anywhere in a backend cannot corrupt the message stream.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def send(msg: dict) -> None:
        channel.write(json.dumps(msg) + "\n")
        channel.flush()

    import_plugins(plugins)
    send({"event": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        job = Job.from_json(msg["job"])
        send({"event": "start", "name": job.name})
        last = [0.0, ""]

        def progress(stage: str, fraction: float, message: str, name: str = job.name, last: list = last) -> None:
            t = time.monotonic()
            if stage != last[1] or t - last[0] > 0.5:
                last[0], last[1] = t, stage
                send({"event": "progress", "name": name, "stage": stage, "fraction": round(fraction, 3)})

        result = execute_job(root, job, int(msg["attempt"]), progress)
        send({"event": "result", "name": job.name, **result})
        if result["restart"]:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
