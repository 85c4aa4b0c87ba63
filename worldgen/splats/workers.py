"""A helper process for the CPU rasterizer: the second core without OpenMP.

On the 2-core machines this project runs on, OpenMP's second torch thread made a refinement step
3-8x *slower* (a step is hundreds of small tensor ops, each one a synchronisation), so the CPU
path runs one torch thread and the second core idled. :class:`CpuWorker` uses it at a coarser
grain: one helper process, forked once per refinement, runs whole pieces of work a rasterizer
call splits off (the tile-binning and compositing of half the tile rows of a view; a colour
solve's views) while the calling process does the other half.

Determinism: the work is always split the same way (``tile_parts``, view groups), whether a
helper runs it or the caller does both halves itself, and the halves' results are combined in a
fixed order, so the bytes do not depend on whether a helper exists (tested).

Tensors cross the pipe through torch's shared-memory reductions (``torch.multiprocessing``):
~5 ms of the caller's CPU per round trip of ~8 MB each way, measured on this machine.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_OPS: dict[str, Callable[..., Any]] = {}
"""Operations a helper may run, by name (registered by the modules that define them)."""

_STATE: dict[int, Any] = {}
"""Per-process store of results kept between calls (a forward's intersections for its backward)."""

_LASTING: dict[int, Any] = {}

_STATE_LIMIT = 4


def register_op(name: str):
    """Decorator: make a module-level function callable in the helper by ``name``."""

    def deco(fn):
        _OPS[name] = fn
        return fn

    return deco


def keep_state(token: int, value: Any, lasting: bool = False) -> None:
    """Store ``value`` under ``token`` in this process. Short-lived values (a forward's
    intersections, taken by its backward) beyond the last few are dropped, oldest first: a forward
    whose backward never comes must not leak them. ``lasting`` values stay until
    :func:`drop_state` (a colour solve's operators, used by every iteration)."""
    if lasting:
        _LASTING[token] = value
        return
    _STATE[token] = value
    while len(_STATE) > _STATE_LIMIT:
        del _STATE[next(iter(_STATE))]


def take_state(token: int) -> Any:
    """Remove and return the short-lived value stored under ``token``."""
    try:
        return _STATE.pop(token)
    except KeyError:
        raise RuntimeError(f"no state {token} kept in this process (a backward ran twice or too late)") from None


def peek_state(token: int) -> Any:
    """The lasting value stored under ``token``."""
    return _LASTING[token]


@register_op("drop_state")
def drop_state(token: int) -> None:
    """Forget whatever is stored under ``token``."""
    _LASTING.pop(token, None)
    _STATE.pop(token, None)


def run_op(name: str, *args):
    """Run the registered operation ``name`` in this process (what the helper does on request)."""
    return _OPS[name](*args)


_tokens = itertools.count(1)


def new_token() -> int:
    """A process-unique key for :func:`keep_state`."""
    return next(_tokens)


def _serve(conn, threads: int, parent_end=None) -> None:
    import torch

    if parent_end is not None:
        # The caller's end of the pipe, inherited by the fork: closed here, so that when the
        # caller dies without closing (killed), this end reads EOF and the helper exits.
        parent_end.close()
    # Ctrl-C reaches the whole process group: the caller handles it and closes the helper (or
    # dies, and the helper reads EOF); a second traceback from here would only be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from . import colours, rasterize  # noqa: F401  (their operations, when the helper was spawned)

    torch.set_num_threads(threads)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        name, args = msg
        c0 = time.process_time()
        try:
            out = ("ok", run_op(name, *args), time.process_time() - c0)
        except BaseException as exc:  # report it in the caller, with the helper's traceback
            out = ("err", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", 0.0)
        conn.send(out)
        del out, msg, args


class CpuWorker:
    """One helper process running registered operations, one request at a time.

    ``submit(name, *args)`` sends the request and returns at once; ``result()`` waits for the
    answer (the caller does its own share of the work in between). Use as a context manager, or
    call :meth:`close`.

    Timing: ``helper_cpu`` sums the helper's CPU seconds over all requests, ``idle_wait`` the
    part of them that exceeded the caller's own CPU seconds between submit and result, i.e. how
    long the caller would have waited on an otherwise idle machine (on a loaded one the wall-clock
    wait also holds time the helper spent waiting for a core). The caller's CPU time plus
    ``idle_wait`` estimates the wall time alone.
    """

    def __init__(self, threads: int = 1):
        import torch.multiprocessing  # noqa: F401  (registers the shared-memory tensor reductions)

        methods = multiprocessing.get_all_start_methods()
        # fork: the helper inherits the imported modules at no cost (the caller runs one torch
        # thread, so no OpenMP pool is live to break in the child); spawn where there is no fork.
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._conn, child = ctx.Pipe()
        parent_end = self._conn if ctx.get_start_method() == "fork" else None
        self._proc = ctx.Process(
            target=_serve, args=(child, threads, parent_end), daemon=True, name="worldgen-splat-helper"
        )
        self._proc.start()
        child.close()
        self._pending = False
        self._c0 = 0.0
        self.helper_cpu = self.idle_wait = 0.0
        self.requests = 0

    def submit(self, name: str, *args) -> None:
        if self._pending:
            raise RuntimeError("the helper is busy: take the previous result first")
        self._conn.send((name, args))
        self._pending = True
        self._c0 = time.process_time()

    def result(self):
        if not self._pending:
            raise RuntimeError("nothing was submitted")
        self._pending = False
        mine = time.process_time() - self._c0
        try:
            status, value, cpu = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the splat helper process died (exit code {self._proc.exitcode})") from None
        self.helper_cpu += cpu
        self.idle_wait += max(0.0, cpu - mine)
        self.requests += 1
        if status != "ok":
            raise RuntimeError(f"the splat helper failed: {value}")
        return value

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._pending:
                self.result()
            self._conn.send(None)
        except (OSError, RuntimeError, EOFError):
            pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
        self._proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def helper_count(requested: int) -> int:
    """Helpers to start for ``requested`` CPU workers (the caller counts as one): 0 on a
    one-core machine, when 1 is asked for, or inside a daemonic process (a multiprocessing pool's
    worker), which may not start processes of its own."""
    if multiprocessing.current_process().daemon:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(requested, cores) - 1)
