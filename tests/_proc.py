"""Helpers for tests that stop a worldgen subprocess with SIGINT, as Ctrl-C does."""

from __future__ import annotations

import signal


def sigint_default() -> None:
    """``preexec_fn`` for such a child: SIGINT back to its default action.

    A shell starts background jobs (``make test &``, ``nohup``) with SIGINT ignored, children
    inherit that, and Python then installs no KeyboardInterrupt handler: the child would never
    see the test's Ctrl-C. ``worldgen batch`` and ``worldgen view`` keep an inherited ignore, as
    background jobs should (``generate`` installs its own handler); the tests must not depend
    on how their runner was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
