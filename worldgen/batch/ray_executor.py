"""The Ray executor: each job is a Ray task on an existing cluster (or a local instance).

A task runs :func:`worldgen.batch.worker.execute_job` in a Ray worker process. Ray keeps its worker
processes between tasks, so models cached with :mod:`worldgen.modelcache` stay loaded for the next
job that lands on the same worker. A task asks for ``cpus_per_job`` CPUs, one GPU for a job with
``gpu: yes`` (or ``auto`` on a cluster that has GPUs), and ``memory_gb`` of memory when given;
Ray places it on a node that has them. The batch root must be a path every node sees (NFS or
similar): jobs write their folders there and the driver reads them.

Jobs travel as JSON text and results come back as JSON text. The driver submits only as many
tasks as the cluster can run at once, so ``--timeout`` counts from a task's start; an overrunning
task is cancelled with ``force=True`` (Ray kills its worker process). A task whose worker dies is
reported as a crash and retried by the batch's policy (Ray's own retries are off).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from worldgen.errors import InputError, MissingDependencyError

from .jobs import Job
from .local import BatchInterrupted
from .policy import EventFn, Policy
from .state import note_in_log


def _task(root: str, job_json: str, attempt: int, plugins: list[str]) -> str:
    """Body of a Ray task: one job in this Ray worker process; the result as JSON text."""
    from .worker import execute_job, import_plugins

    import_plugins(plugins)
    result = execute_job(root, Job.from_json(json.loads(job_json)), attempt)
    result["pid"] = os.getpid()
    return json.dumps(result)


class RayExecutor:
    """Run jobs as Ray tasks.

    Args:
        address: the cluster: "auto" (the one ``ray start`` started on this machine), "ray://HOST:PORT"
            (Ray Client), or None (an already initialised Ray, else "auto").
        cpus_per_job: CPUs each task asks for.
        memory_gb: memory each task asks for (None: no request).
        plugins: modules each task imports first (backends registered by the program that starts
            the batch; a job file cannot name any).
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: float = 1.0,
        memory_gb: float | None = None,
        plugins: tuple[str, ...] = (),
    ):
        try:
            import ray
        except ImportError as e:
            raise MissingDependencyError("ray", "ray", "--executor ray") from e
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address or "auto", log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise InputError(
                    f"cannot reach a Ray cluster at {address or 'auto'} ({str(e).splitlines()[0] if str(e) else e!r}); "
                    "start one with 'ray start --head' or give --address ray://HOST:PORT"
                ) from e
        self.cpus_per_job = cpus_per_job
        self.memory_gb = memory_gb
        self.plugins = list(plugins)
        resources = ray.cluster_resources()
        self.cluster_gpus = int(resources.get("GPU", 0))
        self.slots = max(1, int(resources.get("CPU", 1) // cpus_per_job))

    @property
    def has_gpu(self) -> bool:
        return self.cluster_gpus > 0

    def run(self, root: Path, jobs: list[Job], policy: Policy, on_event: EventFn) -> dict[str, dict[str, Any]]:
        ray = self.ray
        # max_calls=0: a Ray worker runs any number of these tasks and keeps its loaded models. (Ray
        # otherwise retires a worker after every GPU task, to free GPU memory; the model cache holds
        # that memory on purpose, and its capacity bounds it.) It can only be set here, not per call.
        remote = ray.remote(max_calls=0)(_task)
        root_s = str(Path(root).resolve())
        outcomes: dict[str, dict[str, Any]] = {}
        queue: list[tuple[float, Job, int, float | None]] = [(0.0, job, 1, None) for job in jobs]
        running: dict[Any, tuple[Job, int, float, float]] = {}  # ref -> (job, attempt, started, first start)

        def submit(job: Job, attempt: int, first: float | None) -> None:
            gpu = job.gpu == "yes" or (job.gpu == "auto" and self.cluster_gpus > 0)
            opts: dict[str, Any] = {"num_cpus": self.cpus_per_job, "num_gpus": 1 if gpu else 0, "max_retries": 0}
            if self.memory_gb:
                opts["memory"] = int(self.memory_gb * 2**30)
            ref = remote.options(**opts).remote(root_s, json.dumps(job.to_json()), attempt, self.plugins)
            now = time.time()
            running[ref] = (job, attempt, time.monotonic(), first or now)
            on_event("start", job, {"attempt": attempt, "worker": "ray"})

        def settle(job: Job, attempt: int, first: float, result: dict[str, Any]) -> None:
            if result.get("status") not in ("done", "timeout"):
                delay = policy.retry_delay(result, attempt)
                if delay is not None:
                    on_event("retry", job, {"attempt": attempt, "error": result.get("error"), "delay": delay})
                    queue.append((time.monotonic() + delay, job, attempt + 1, first))
                    return
            outcome = {
                "status": result.get("status", "failed"),
                "seconds": round(time.time() - first, 3),
                "attempts": attempt,
                "outputs": list(result.get("outputs") or []),
                "error": result.get("error"),
                "log": result.get("log"),
                "model_loads": result.get("model_loads"),
            }
            outcomes[job.name] = outcome
            on_event("end", job, outcome)

        try:
            while queue or running:
                now = time.monotonic()
                for item in [q for q in queue if q[0] <= now]:
                    if len(running) >= self.slots:
                        break
                    queue.remove(item)
                    submit(item[1], item[2], item[3])
                if not running:
                    time.sleep(0.1)
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
                for ref in done:
                    job, attempt, _, first = running.pop(ref)
                    try:
                        result = json.loads(ray.get(ref))
                    except ray.exceptions.TaskCancelledError:
                        continue
                    except ray.exceptions.RayError as e:  # the worker died (OOM kill, segfault) or Ray failed
                        result = {"status": "failed", "error": _ray_error(e), "retry": True, "log": "job.log"}
                        note_in_log(Path(root_s), job, f"the driver saw: {result['error']}")
                    settle(job, attempt, first, result)
                for ref, (job, attempt, started, first) in list(running.items()):
                    limit = job.timeout or policy.timeout
                    if limit and time.monotonic() - started > limit:
                        running.pop(ref)
                        ray.cancel(ref, force=True)
                        error = f"ran longer than its timeout of {limit:g} s"
                        note_in_log(Path(root_s), job, f"stopped by the driver: {error}")
                        settle(job, attempt, first, {"status": "timeout", "error": error, "log": "job.log"})
        except KeyboardInterrupt:
            for ref, (job, attempt, _, first) in running.items():
                ray.cancel(ref, force=True)
                outcome = {"status": "interrupted", "seconds": round(time.time() - first, 3), "attempts": attempt}
                outcome.update(outputs=[], error="stopped by Ctrl-C", log="job.log", model_loads=None)
                outcomes[job.name] = outcome
                on_event("end", job, outcome)
            raise BatchInterrupted(outcomes) from None
        return outcomes


def _ray_error(e: Exception) -> str:
    name = type(e).__name__
    if "OutOfMemory" in name:
        return "Ray stopped the task: its node ran out of memory; ask for more with --memory-per-job"
    if "WorkerCrashed" in name or "ActorDied" in name:
        return "the Ray worker process died (out of memory? a crash? see job.log)"
    first = str(e).strip().splitlines()[0] if str(e).strip() else name
    return f"Ray: {name}: {first}"
