"""Validation results of a run's exported assets, cached by file content in ``validation.json``.

The validators are worldgen.exporters.validate's (Khronos glTF validator, OpenUSD and NVIDIA USD
rules, an independent splat reader). Results are stored per file with its sha256, so a report
rebuilt for an unchanged run does not run them again; a validator that is not installed is
stored as "skipped" with its reason, never as a pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from ..io import atomic_write

VALIDATION_JSON = "validation.json"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_validation(run_dir: str | os.PathLike) -> dict:
    """{file name: {"sha256", "findings": [Finding as dict]}} as last stored ({} when none)."""
    try:
        rec = json.loads((Path(run_dir) / VALIDATION_JSON).read_text())
    except (OSError, ValueError):
        return {}
    return rec.get("files", {}) if isinstance(rec, dict) else {}


def validate_run(run_dir: str | os.PathLike, run_validators: bool = True) -> dict:
    """Validation findings of every asset in a run folder, reusing stored ones for unchanged files.

    Args:
        run_dir: the run folder.
        run_validators: validate files that have no current result; False only reads what is stored.

    Returns:
        {file name: {"sha256": str, "findings": [dict]} or {"sha256": str, "findings": None}
        (not validated)}, for every asset file now in the folder.
    """
    from worldgen.exporters.validate import find_assets, validate_file

    run = Path(run_dir)
    stored = read_validation(run)
    out: dict[str, dict] = {}
    changed = False
    for path in find_assets(run):
        name = path.relative_to(run).as_posix()
        sha = _sha(path)
        old = stored.get(name)
        if old and old.get("sha256") == sha and old.get("findings") is not None:
            out[name] = old
        elif run_validators:
            out[name] = {"sha256": sha, "findings": [dataclasses.asdict(f) for f in validate_file(path)]}
            changed = True
        else:
            out[name] = {"sha256": sha, "findings": None}
    if changed or set(out) != set(stored):
        keep = {k: v for k, v in out.items() if v["findings"] is not None}
        atomic_write(
            run / VALIDATION_JSON,
            (json.dumps({"format": 1, "files": keep}, indent=2, sort_keys=True) + "\n").encode(),
        )
    return out


def verdict(findings: list[dict] | None) -> tuple[str, str]:
    """("passed" | "failed" | "skipped" | "not validated", one-line detail) of one file's findings."""
    if findings is None:
        return "not validated", "run 'worldgen report DIR' to validate"
    errors = sum(f["errors"] for f in findings)
    warnings = sum(f["warnings"] for f in findings)
    ran = [f["validator"] for f in findings if not f["skipped"]]
    skipped = [f"{f['validator']}: {f['skipped']}" for f in findings if f["skipped"]]
    if errors:
        first = next((m for f in findings for m in f["messages"]), "")
        return "failed", f"{errors} error(s), {warnings} warning(s) by {', '.join(ran)}; first: {first}"
    if not ran:
        return "skipped", "; ".join(skipped)
    detail = f"{', '.join(ran)}: 0 errors, {warnings} warning(s)"
    if skipped:
        detail += "; skipped " + "; ".join(skipped)
    return "passed", detail
