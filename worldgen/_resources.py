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
    start_rss: int = 0


class measure:
    """Context manager: ``with measure() as u: ...; u.seconds, u.peak_rss``."""

    def __enter__(self) -> Usage:
        self.usage = Usage(peak_is_exact=_reset_peak(), start_rss=current_rss())
        self._t0 = time.perf_counter()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        self.usage.seconds = time.perf_counter() - self._t0
        self.usage.peak_rss = _peak_rss_bytes()


def current_rss() -> int:
    """Resident memory of this process now, bytes (0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def available_memory() -> int | None:
    """Memory the system can give this process without swapping, bytes: MemAvailable, capped by
    a cgroup (container) limit; None where unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                raw = f.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            used = 0
            for cur in ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes"):
                try:
                    with open(cur) as f:
                        used = int(f.read().strip())
                    break
                except (OSError, ValueError):
                    continue
            room = max(int(raw) - used, 0)
            avail = room if avail is None else min(avail, room)
        break
    return avail


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
