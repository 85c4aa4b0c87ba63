"""Memory guard: each stage's peak memory estimated before it starts, from the input size and preset.

The estimate is the memory a stage adds to the process's resident set while it runs: a fixed
part (the libraries it imports: the renderer, torch, the USD and glTF writers) plus a part
proportional to its work unit (panorama pixels; grid vertices for the sheet mesh). The
coefficients were fitted on the benchmark worlds (docs/benchmarks.md, "memory"): measured peak
minus the resident memory at the stage's start, on an AMD EPYC, 2 cores. A backend without
coefficients gets no estimate (the manifest says null) and is never refused.

The runner compares ``resident now + estimate`` with the limit (``--max-memory``, else resident
now + MemAvailable, cgroup limits included) before a stage starts: over it, a user panorama's
working width is halved until it fits (with a note), anything else stops with a one-line error
naming the estimate, the limit and the fix. Never an out-of-memory kill halfway through a stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MB = 2**20


@dataclass(frozen=True)
class Cost:
    """fixed_mb + per_unit_bytes x units, MB."""

    fixed_mb: float
    per_unit_bytes: float
    unit: str  # "pixels" (of the panorama the stage reads or makes), "grid" (sheet grid vertices)
    per_working_pixel_bytes: float = 0.0  # the larger of decoding and keeping: max(unit, kept pixels)


# Least-squares fits of (peak - start) on the forest and village worlds at the fast (1024x512)
# and balanced (2048x1024) presets; an affine fit may have a negative fixed part (the sheet's
# cost grows faster than its grid), the estimate is clipped at 0.
COSTS: dict[tuple[str, str], Cost] = {
    ("panorama", "procedural"): Cost(258.0, 92.0, "pixels"),
    # The peak is the larger of decoding (~10.5 B per file pixel: 1-bit 16384x8192 scaled down,
    # 1407 MB) and keeping the working panorama (~34.4 B per kept pixel: RGB 8192x4096, 1154 MB).
    ("panorama", "file"): Cost(0.0, 10.5, "pixels", 34.4),
    ("depth", "given"): Cost(0.0, 4.0, "pixels"),
    ("gaussians", "init"): Cost(0.0, 190.0, "pixels"),
    ("gaussians", "refine"): Cost(180.0, 190.0, "pixels"),  # fast preset (no training) only measured
    ("mesh", "sheet"): Cost(-55.0, 760.0, "grid"),
    ("export", "assets"): Cost(43.0, 534.0, "pixels"),
}


def work_units(stage: str, backend: str, cfg: Any, pixels: int) -> int:
    """The unit the cost of ``(stage, backend)`` scales with, for a panorama of ``pixels``."""
    cost = COSTS.get((stage, backend))
    if cost is not None and cost.unit == "grid":
        width = math.isqrt(2 * pixels)  # W of an H x 2H panorama
        cols = min(width, int(getattr(cfg, "grid_width", width)))
        # grid_lines may add up to refine_budget x the uniform grid's vertices
        return int(cols * (cols // 2) * float(getattr(cfg, "refine_budget", 1.0)))
    return int(pixels)


def estimate_mb(stage: str, backend: str, cfg: Any, pixels: int | None) -> float | None:
    """Memory the stage adds over the resident set at its start, MB; None when unknown."""
    cost = COSTS.get((stage, backend))
    if cost is None or not pixels:
        return None
    mb = cost.per_unit_bytes * work_units(stage, backend, cfg, pixels) / MB
    if cost.per_working_pixel_bytes:
        width = int(getattr(cfg, "max_width", 1 << 30))
        mb = max(mb, cost.per_working_pixel_bytes * min(pixels, width * (width // 2)) / MB)
    return max(0.0, cost.fixed_mb + mb)


def panorama_pixels(stage: str, backend: str, cfg: Any, request: Any, made: str | None) -> int | None:
    """Pixels of the panorama a stage works on: for the first stage, what it will make (the
    procedural width, or a user file's size as decoded); later, the run's panorama.png."""
    import warnings

    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # headers only; the reader has its limit
    if stage == "panorama":
        if backend == "procedural" and hasattr(cfg, "width"):
            return int(cfg.width) * (int(cfg.width) // 2)
        if backend == "file" and request.panorama:
            try:
                from .geometry.gpano import read_pano_crop

                with Image.open(request.panorama) as im:
                    size = im.width * im.height
                    crop = read_pano_crop(request.panorama)
                    if crop is not None and not crop.is_full:
                        # a partial panorama is placed in a full equirect at its own scale (the stage
                        # then caps its width): the pixels kept are the full equirect's
                        full = crop.full_width * im.width / crop.width
                        size = max(size, int(full * (full // 2)))
                    return size
            except Exception:  # the stage itself reports unreadable files and bad metadata, in one line
                return None
        return None
    if made is None:
        return None
    try:
        with Image.open(made) as im:  # reads the header only
            return im.width * im.height
    except Exception:
        return None
