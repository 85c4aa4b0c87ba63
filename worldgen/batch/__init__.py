"""Batch generation: many worlds from one job file, on local worker processes or a Ray cluster.

- :mod:`.jobs`: job files (YAML, JSONL, CSV) -> validated jobs; :mod:`.names`: safe folder names.
- :mod:`.state`: per-job records, the skip check, ``batch.json``, locks.
- :mod:`.worker`: running one job in-process; the local worker process.
- :mod:`.local` and :mod:`.ray_executor`: the executors; :mod:`.policy`: retries and timeouts.
- :mod:`.run`: a whole batch. The command is ``worldgen batch`` (cli/batch.py); docs/batch.md.
"""

from .jobs import Job, JobFileError, load_jobs
from .local import BatchInterrupted, LocalExecutor
from .policy import Policy, default_workers
from .run import BatchResult, run_batch

__all__ = [
    "BatchInterrupted",
    "BatchResult",
    "Job",
    "JobFileError",
    "LocalExecutor",
    "Policy",
    "default_workers",
    "load_jobs",
    "run_batch",
]
