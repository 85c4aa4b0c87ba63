"""Stage overrides in the forms the command line and batch job files share.

``STAGE=NAME`` picks a backend (``mesh=tsdf``); ``STAGE.FIELD=VALUE`` sets one option of a stage's
backend config (``mesh.max_triangles=100000``), VALUE read as JSON when it parses (numbers,
booleans, lists) and as a plain string otherwise. The parsers raise ``ValueError`` with a one-line
message; each caller turns it into its own error (a CLI usage error, a job-file error with a line).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def parse_backends(items: Iterable[str]) -> dict[str, str]:
    """``["mesh=tsdf", ...]`` -> ``{"mesh": "tsdf"}``; ValueError on an item that is not STAGE=NAME."""
    out: dict[str, str] = {}
    for item in items:
        stage, sep, name = item.partition("=")
        if not sep or not stage.strip() or not name.strip():
            raise ValueError(f"{item!r} is not STAGE=NAME (e.g. mesh=tsdf)")
        out[stage.strip()] = name.strip()
    return out


def parse_value(raw: str) -> Any:
    """An option value from text: JSON when it parses (lists become tuples), else the text itself."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw  # a bare word is a string
    return tuple(value) if isinstance(value, list) else value


def parse_options(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["mesh.max_triangles=1000", ...]`` -> ``{"mesh": {"max_triangles": 1000}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        lhs, sep, raw = item.partition("=")
        stage, dot, fld = lhs.partition(".")
        if not sep or not dot or not stage.strip() or not fld.strip():
            raise ValueError(f"{item!r} is not STAGE.FIELD=VALUE (e.g. mesh.max_triangles=100000)")
        out.setdefault(stage.strip(), {})[fld.strip()] = parse_value(raw)
    return out


def option_map(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"mesh.max_triangles": 1000}`` (already typed values) -> ``{"mesh": {"max_triangles": 1000}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        stage, dot, fld = str(key).partition(".")
        if not dot or not stage.strip() or not fld.strip():
            raise ValueError(f"{key!r} is not STAGE.FIELD (e.g. mesh.max_triangles)")
        out.setdefault(stage.strip(), {})[fld.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def apply_shorthands(
    options: dict[str, dict[str, Any]],
    max_splats: int | None = None,
    engine: str | None = None,
    formats: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Fold generate's shorthand options into ``options`` (in place; also returned):
    --max-splats is gaussians.max_splats, --engine export.engine, --format export.formats."""
    if max_splats is not None:
        options.setdefault("gaussians", {})["max_splats"] = max_splats
    if engine is not None:
        options.setdefault("export", {})["engine"] = engine
    if formats:
        options.setdefault("export", {})["formats"] = tuple(formats)
    return options
