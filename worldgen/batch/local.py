"""The local executor: N long-lived worker processes on this machine.

Each worker (``python -m worldgen.batch.worker``) runs one job at a time in-process, so the models
a job loads stay loaded for its next job. The driver talks to it through JSON lines on its stdin
and stdout, never pickles. A job that crashes its worker (a segfault, the kernel's out-of-memory
killer) or overruns ``--timeout`` (its worker is killed) costs only that worker, which is replaced;
the other workers go on. Workers run in their own session, so a Ctrl-C in the terminal reaches the
driver only, which then stops them and records the jobs they were running as interrupted.

GPUs: with G visible GPUs, worker i < G sees only GPU i (CUDA_VISIBLE_DEVICES) and the others see
none, so at most one job runs on each GPU at a time. A job with ``gpu: yes`` waits for a GPU
worker; ``auto`` takes a GPU worker when one is free; ``no`` prefers CPU workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldgen._resources import cpu_count
from worldgen.errors import WorldgenError

from .jobs import Job
from .policy import EventFn, Policy, death_message
from .state import STATE_DIR, note_in_log

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class BatchInterrupted(WorldgenError):
    """Ctrl-C (or SIGTERM) stopped the batch; ``outcomes`` holds what finished."""

    def __init__(self, outcomes: dict[str, dict[str, Any]]):
        super().__init__("the batch was interrupted")
        self.outcomes = outcomes


@dataclass
class _Queued:
    job: Job
    attempt: int
    ready_at: float
    first_start: float | None = None


@dataclass
class _Slot:
    index: int
    gpu: str | None
    proc: subprocess.Popen | None = None
    buf: bytes = b""
    item: _Queued | None = None
    started: float = 0.0
    ready: bool = False
    failed_starts: int = 0
    retiring: bool = False  # said it will exit after its last result: give it no more jobs
    messages: list[dict] = field(default_factory=list)


class LocalExecutor:
    """Run jobs on ``workers`` local processes.

    Args:
        workers: number of worker processes.
        gpus: CUDA device ids to hand out, one worker each (None: every GPU visible here).
        plugins: modules every worker imports first (extra backends registered by the program
            that starts the batch; a job file cannot name any).
    """

    def __init__(self, workers: int, gpus: list[str] | None = None, plugins: tuple[str, ...] = ()):
        from .policy import gpu_devices

        self.workers = max(1, int(workers))
        self.gpus = list(gpu_devices() if gpus is None else gpus)
        self.plugins = tuple(plugins)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def run(self, root: Path, jobs: list[Job], policy: Policy, on_event: EventFn) -> dict[str, dict[str, Any]]:
        """Run every job (with retries); returns name -> final outcome. Raises BatchInterrupted."""
        self.root = Path(root).resolve()
        self.policy = policy
        self.on_event = on_event
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.queue = [_Queued(job, 1, 0.0) for job in jobs]
        n = min(self.workers, max(1, len(jobs)))
        self.slots = [_Slot(i, self.gpus[i] if i < len(self.gpus) else None) for i in range(n)]
        self.sel = selectors.DefaultSelector()
        try:
            for slot in self.slots:
                self._start(slot)
            while self.queue or any(s.item for s in self.slots):
                self._dispatch()
                self._poll(0.2)
                self._check_deaths()
                self._check_timeouts()
        except KeyboardInterrupt:
            self._stop_all()
            for slot in self.slots:
                if slot.item is not None:
                    self._finish(slot.item, {"status": "interrupted", "error": "stopped by Ctrl-C", "seconds": 0.0})
                    slot.item = None
            raise BatchInterrupted(self.outcomes) from None
        finally:
            self._stop_all()
            self.sel.close()
        return self.outcomes

    # -- workers ------------------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        env = dict(os.environ)
        # N workers share the cores: give each its share of threads (torch, OpenMP, BLAS read these
        # at import), or N processes each running one thread per core would thrash the caches.
        threads = str(max(1, cpu_count() // len(self.slots)))
        for var in _THREAD_VARS:
            env.setdefault(var, threads)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu or ""
        paths = {str(Path(sys.modules[m].__file__).resolve().parents[m.count(".")]) for m in self.plugins}
        if paths:
            env["PYTHONPATH"] = os.pathsep.join([*sorted(paths), *filter(None, [env.get("PYTHONPATH")])])
        args = [sys.executable, "-m", "worldgen.batch.worker", str(self.root)]
        for m in self.plugins:
            args += ["--import", m]
        logs = self.root / STATE_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"worker-{slot.index}.log", "ab") as err:
            slot.proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
            )
        os.set_blocking(slot.proc.stdout.fileno(), False)
        slot.buf, slot.ready, slot.item, slot.retiring = b"", False, None, False
        self.sel.register(slot.proc.stdout, selectors.EVENT_READ, slot)

    def _kill(self, slot: _Slot, sig: int = signal.SIGKILL) -> None:
        proc = slot.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the worker's session: the worker and anything it started

    def _retire(self, slot: _Slot) -> None:
        proc = slot.proc
        if proc is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(proc.stdout)
        self._kill(slot)
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        slot.proc = None

    def _stop_all(self) -> None:
        live = [s for s in self.slots if s.proc is not None]
        for slot in live:
            with contextlib.suppress(OSError):
                slot.proc.stdin.close()  # an idle worker ends at end of input
            if slot.item is not None:
                self._kill(slot, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        for slot in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                slot.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            self._retire(slot)

    # -- scheduling ---------------------------------------------------------------------------

    def _pick(self, slot: _Slot, now: float) -> _Queued | None:
        ready = [q for q in self.queue if q.ready_at <= now]
        if slot.gpu is None:
            ready = [q for q in ready if q.job.gpu != "yes"]
            return ready[0] if ready else None
        # A GPU worker: GPU jobs first; a CPU-only job when no CPU worker is idle.
        for q in ready:
            if q.job.gpu in ("yes", "auto"):
                return q
        cpu_idle = any(s.gpu is None and s.item is None and s.proc is not None for s in self.slots)
        return None if cpu_idle or not ready else ready[0]

    def _dispatch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.item is not None or slot.proc is None or slot.retiring:
                continue
            item = self._pick(slot, now)
            if item is None:
                continue
            self.queue.remove(item)
            msg = json.dumps({"job": item.job.to_json(), "attempt": item.attempt}) + "\n"
            try:
                slot.proc.stdin.write(msg.encode())
                slot.proc.stdin.flush()
            except OSError:  # the worker is already gone: put the job back; the death check restarts it
                self.queue.insert(0, item)
                continue
            slot.item, slot.started = item, now
            item.first_start = item.first_start or time.time()
            self.on_event("start", item.job, {"attempt": item.attempt, "worker": slot.index})

    def _poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            self._read(key.data)

    def _read(self, slot: _Slot) -> None:
        try:
            chunk = os.read(slot.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(slot.proc.stdout)
            return
        slot.buf += chunk
        *lines, slot.buf = slot.buf.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not a message (cannot happen unless something wrote to fd 1 raw)
            self._message(slot, msg)

    def _message(self, slot: _Slot, msg: dict) -> None:
        event = msg.get("event")
        if event == "ready":
            slot.ready, slot.failed_starts = True, 0
        elif event == "start" and slot.item is not None:
            slot.started = time.monotonic()  # the clock of --timeout starts when the job does
        elif event == "progress" and slot.item is not None:
            self.on_event("progress", slot.item.job, {"stage": msg.get("stage"), "worker": slot.index})
        elif event == "result" and slot.item is not None:
            item, slot.item = slot.item, None
            slot.retiring = bool(msg.get("restart"))
            self._settle(item, msg)

    def _settle(self, item: _Queued, result: dict[str, Any]) -> None:
        """Retry a failed attempt when the policy allows, else record the job's final outcome."""
        if result.get("status") != "done":
            delay = self.policy.retry_delay(result, item.attempt)
            if delay is not None:
                self.on_event(
                    "retry", item.job, {"attempt": item.attempt, "error": result.get("error"), "delay": delay}
                )
                self.queue.append(_Queued(item.job, item.attempt + 1, time.monotonic() + delay, item.first_start))
                return
        self._finish(item, result)

    def _finish(self, item: _Queued, result: dict[str, Any]) -> None:
        outcome = {
            "status": result.get("status", "failed"),
            "seconds": round(time.time() - (item.first_start or time.time()), 3),
            "attempts": item.attempt,
            "outputs": list(result.get("outputs") or []),
            "error": result.get("error"),
            "log": result.get("log"),
            "model_loads": result.get("model_loads"),
        }
        self.outcomes[item.job.name] = outcome
        self.on_event("end", item.job, outcome)

    def _check_deaths(self) -> None:
        for slot in self.slots:
            if slot.proc is None or slot.proc.poll() is None:
                continue
            while self._drain(slot):  # messages written just before it exited (a last result)
                pass
            code = slot.proc.returncode
            item, slot.item = slot.item, None
            was_ready = slot.ready
            self._retire(slot)
            if item is not None:
                note_in_log(self.root, item.job, f"the driver saw: {death_message(code)}")
                self._settle(item, {"status": "failed", "error": death_message(code), "retry": True, "log": "job.log"})
            if not was_ready:
                slot.failed_starts += 1
                if slot.failed_starts >= 3:
                    log = self.root / STATE_DIR / "logs" / f"worker-{slot.index}.log"
                    raise WorldgenError(f"worker processes fail to start ({death_message(code)}); see {log}")
            if self.queue or any(s.item for s in self.slots):
                self._start(slot)

    def _drain(self, slot: _Slot) -> bool:
        try:
            chunk = os.read(slot.proc.stdout.fileno(), 1 << 16)
        except (BlockingIOError, OSError, ValueError):
            return False
        if not chunk:
            return False
        slot.buf += chunk
        *lines, slot.buf = slot.buf.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                self._message(slot, json.loads(line))
        return True

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.item is None:
                continue
            limit = slot.item.job.timeout or self.policy.timeout
            if limit and now - slot.started > limit:
                item, slot.item = slot.item, None
                self._retire(slot)  # killing the process is the only way to stop a job mid-stage
                result = {"status": "timeout", "error": f"ran longer than its timeout of {limit:g} s", "log": "job.log"}
                note_in_log(self.root, item.job, f"stopped by the driver: {result['error']}")
                self._finish(item, result)
                if self.queue or any(s.item for s in self.slots):
                    self._start(slot)
