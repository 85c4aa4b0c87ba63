"""The files of a run folder that must be byte-identical between runs of the same inputs and seed.

``manifest.json`` and ``report.html`` record how a run went (times, memory, library versions), so
they differ from run to run by design; every other file is content and is compared byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from worldgen.pipeline import MANIFEST
from worldgen.report.html import REPORT_HTML

RUN_RECORDS = frozenset({MANIFEST, REPORT_HTML})


def run_outputs(out: Path, recursive: bool = False) -> dict[str, bytes]:
    """Relative path -> bytes of every content file in ``out`` (records excluded)."""
    files = out.rglob("*") if recursive else out.iterdir()
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(files)
        if p.is_file() and p.name not in RUN_RECORDS
    }
