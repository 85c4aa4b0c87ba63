"""Wall time and peak resident memory of a block of work (Linux /proc, with a portable fallback)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Usage:
    """Measured by :class:`measure`: wall seconds, and the process's peak RSS in bytes during the
    block (whole-process peak since start where the peak cannot be reset)."""

    seconds: float = 0.0
    peak_rss: int = 0
    peak_is_exact: bool = False


class measure:
    """Context manager: ``with measure() as u: ...; u.seconds, u.peak_rss``."""

    def __enter__(self) -> Usage:
        self.usage = Usage(peak_is_exact=_reset_peak())
        self._t0 = time.perf_counter()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        self.usage.seconds = time.perf_counter() - self._t0
        self.usage.peak_rss = _peak_rss_bytes()


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
