"""Ctrl-C (SIGINT) and SIGTERM: stop within 2 s with exit 130 / 143 and say how to resume.

The handler raises :class:`Interrupted` in the main thread, so the run unwinds normally: every
file is written through ``atomic_write`` (temp file, then rename) and the manifest records a
stage only after its files, so whatever stopped stays resumable. Python runs a handler only
between bytecodes; a long C call (meshoptimizer, a torch kernel) or code that swallows the
exception could hold the stop up, so a watchdog thread ends the process after ``grace`` seconds
with the same message and exit code. That is as safe as SIGKILL, which the pipeline already
survives: a torn temp file is removed by the next run. A second signal exits at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    """A stop signal arrived; ``exit_code`` is 128 + its number (130 SIGINT, 143 SIGTERM).

    A BaseException like KeyboardInterrupt, so ``except Exception`` in a backend does not swallow it.
    """

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(SIGNAL_NAMES.get(signum, f"signal {signum}"))


_announced: list[bool] = []


def announce(signum: int, hint: str) -> None:
    """Print the one line (once per process, whoever gets there first: the CLI or the watchdog)."""
    if _announced:
        return
    _announced.append(True)
    with contextlib.suppress(Exception):
        sys.stderr.write(f"interrupted by {SIGNAL_NAMES.get(signum, f'signal {signum}')}: {hint}\n")
        sys.stderr.flush()


@contextlib.contextmanager
def stop_on_signals(hint: str, grace: float = 1.5) -> Iterator[None]:
    """Within the block, SIGINT / SIGTERM raise :class:`Interrupted` (main thread only).

    Python runs a signal handler only when the main thread is back in bytecode, so the watchdog
    is started from the C level instead: ``signal.set_wakeup_fd`` makes the interpreter's C
    handler write the signal number to a socket at once, and a thread waiting on that socket
    arms the ``grace`` timer even while the main thread sits in a long C call.

    Args:
        hint: what to do next, e.g. "run the same command again to resume".
        grace: seconds the run may take to unwind before the watchdog ends the process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []
    done = threading.Event()
    rsock, wsock = socket.socketpair()
    wsock.setblocking(False)

    def watch() -> None:
        while True:
            try:
                data = rsock.recv(1)
            except OSError:
                return
            if not data or done.is_set():
                return
            if data[0] in SIGNAL_NAMES:  # another signal with a Python handler: not ours
                break
        if not done.wait(grace):
            _hard_exit(data[0], hint)

    def handler(signum: int, frame) -> None:
        if fired:  # a second signal: the user insists
            _hard_exit(signum, hint)
        fired.append(signum)
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in SIGNAL_NAMES}
    old_fd = signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, daemon=True, name="worldgen-stop")
    watcher.start()
    try:
        yield
    finally:
        # After a signal the watchdog stays armed until the process ends: worker threads still
        # inside a C call (the two-halves simplifier) would otherwise hold up the exit.
        signal.set_wakeup_fd(old_fd)
        for s, h in old.items():
            signal.signal(s, h)
        if not fired:
            done.set()
            with contextlib.suppress(OSError):
                wsock.send(b"\0")  # wake the watcher so it ends
            watcher.join(timeout=1.0)
            rsock.close()
            wsock.close()
        else:
            # Keep the sockets open for the armed watcher; the process is about to end anyway.
            _keep.append((rsock, wsock))


_keep: list = []


def _hard_exit(signum: int, hint: str) -> None:
    announce(signum, hint)
    os._exit(128 + signum)
