"""What executors share: the retry and timeout policy, the events they report, and the
one-line description of a worker that died."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worldgen._resources import cpu_count

from .jobs import Job

EventFn = Callable[[str, Job, dict[str, Any]], None]
"""Called as (kind, job, details): "start" {attempt, worker}, "progress" {stage}, "retry"
{attempt, error, delay}, "end" {the job's final outcome: status, seconds, attempts, outputs, error, log}."""

WORKER_MEMORY_GB = 3.0
"""Memory one local worker is given when the default worker count is worked out (a fast or
balanced CPU run peaks at 1-2 GB; headroom for the rest of the machine)."""


@dataclass(frozen=True)
class Policy:
    """How hard to try.

    Args:
        timeout: seconds one attempt may run before its worker is killed (None: no limit).
        retries: extra attempts after a failure that may pass on another try (a crash, running out
            of memory, an unexpected error; never a bad input, never a timeout).
        backoff: seconds before the first retry; doubled for each later one (at most 300 s).
    """

    timeout: float | None = None
    retries: int = 0
    backoff: float = 2.0

    def retry_delay(self, result: dict[str, Any], attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when the job is not tried again."""
        if not result.get("retry") or attempt > self.retries:
            return None
        return min(self.backoff * 2 ** (attempt - 1), 300.0)


def death_message(returncode: int) -> str:
    """Why a worker process ended, in one line, from its exit status."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory? the kernel kills the largest process)" if -returncode == signal.SIGKILL else ""
        return f"the worker process died from {name}{hint}"
    return f"the worker process exited with code {returncode}"


def default_workers() -> int:
    """Workers for this machine: one per core, at most one per WORKER_MEMORY_GB of available memory."""
    avail_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail_gb = int(line.split()[1]) / 2**20
                    break
    except OSError:
        pass
    n = cpu_count()
    if avail_gb is not None:
        n = min(n, int(avail_gb // WORKER_MEMORY_GB))
    return max(1, n)


def gpu_devices() -> list[str]:
    """CUDA device ids visible to this process (the NVIDIA driver's /proc entries, narrowed by
    CUDA_VISIBLE_DEVICES), found without importing torch or creating a CUDA context."""
    try:
        n = len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(n)]
    ids = []
    for v in visible.split(","):
        if not v.strip() or v.strip().startswith("-"):
            break  # CUDA stops at the first invalid entry
        ids.append(v.strip())
    return ids[:n]
