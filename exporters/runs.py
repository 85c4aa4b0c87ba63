"""Re-export a finished run folder from its stored artifacts, without recomputing anything."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from worldgen.artifacts import ARTIFACTS, decode_artifact
from worldgen.errors import InputError
from worldgen.io import atomic_write, safe_join

from .engines import get_engine, resolve
from .registry import export_assets, get_format

log = logging.getLogger(__name__)


def load_run(run_dir: str | os.PathLike) -> tuple[Any, Any]:
    """(mesh, gaussians) decoded from ``run_dir/mesh.npz`` and ``run_dir/gaussians.npz`` (None if absent)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"run folder {str(root)!r} does not exist; give the folder a `worldgen run` wrote")
    values = []
    for key in ("mesh", "gaussians"):
        p = root / ARTIFACTS[key].filename
        values.append(decode_artifact(key, p.read_bytes()) if p.is_file() else None)
    if values[0] is None and values[1] is None:
        raise InputError(f"{str(root)!r} holds neither mesh.npz nor gaussians.npz; run the pipeline into it first")
    return values[0], values[1]


def export_run(
    run_dir: str | os.PathLike, formats: list[str] | None = None, engine: str | None = None, **overrides: Any
) -> tuple[list[Path], dict]:
    """Write the requested formats of a finished run into the run folder.

    Args:
        run_dir: the run folder (holds mesh.npz and/or gaussians.npz).
        formats: format names; None or empty -> the engine preset's formats.
        engine: engine preset name; None -> "default".
        overrides: :class:`ExportSettings` fields (None values keep the preset's).

    Returns:
        (paths written, export report).
    """
    preset = get_engine(engine)
    names = list(formats) if formats else list(preset.formats)
    for n in names:
        get_format(n)  # unknown names fail before any work
    settings = resolve(preset.name, **overrides)
    mesh, gaussians = load_run(run_dir)
    files, report = export_assets(mesh, gaussians, names, settings)
    if not files:
        raise InputError(
            f"none of the formats {', '.join(names)} has its input in this run "
            f"({'; '.join(f'{k}: {v}' for k, v in report['skipped'].items())})"
        )
    written = []
    for rel, data in files.items():
        path = safe_join(run_dir, rel)
        atomic_write(path, data)
        written.append(path)
        log.info("wrote %s (%d bytes)", path, len(data))
    return written, report
