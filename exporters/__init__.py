"""Asset writers (installed as ``worldgen.exporters``): one module per format, bytes out.

Public API:
    - ``export_<fmt>(value, settings) -> bytes | dict[str, bytes]`` per format module.
    - :func:`export_assets` (the dispatcher), :data:`FORMATS`, :func:`available_formats`.
    - :data:`ENGINES` and :func:`resolve` (engine presets -> :class:`ExportSettings`).
    - :func:`export_run` (re-export a finished run folder) and :func:`validate_folder`.

Conversions from worldgen's world frame (glTF's: +Y up, -Z forward, metres) to each file
format's frame happen only in this package; every writer documents its own.
"""

from __future__ import annotations

# Importing the writer modules registers their formats, in this order (the order users see).
from . import (
    gltf,  # noqa: F401,I001
    splat_dot,  # noqa: F401
    splat_gltf,  # noqa: F401
    splat_ply,  # noqa: F401
    splat_usd,  # noqa: F401
    spz,  # noqa: F401
    usd,  # noqa: F401
)
from .engines import ENGINES, EnginePreset, get_engine, resolve
from .gltf import export_collision_glb, export_glb
from .registry import FORMATS, Format, available_formats, export_assets, get_format, register_format
from .runs import export_run
from .settings import ExportSettings
from .splat_dot import export_splat
from .splat_gltf import export_splat_glb
from .splat_ply import export_ply
from .splat_usd import export_splat_usda, export_splat_usdc, export_splat_usdz
from .spz import export_spz
from .usd import export_usda, export_usdc, export_usdz
from .validate import Finding, validate_file, validate_folder

__all__ = [
    "ENGINES",
    "EnginePreset",
    "ExportSettings",
    "FORMATS",
    "Finding",
    "Format",
    "available_formats",
    "export_assets",
    "export_collision_glb",
    "export_glb",
    "export_ply",
    "export_run",
    "export_splat",
    "export_splat_glb",
    "export_splat_usda",
    "export_splat_usdc",
    "export_splat_usdz",
    "export_spz",
    "export_usda",
    "export_usdc",
    "export_usdz",
    "get_engine",
    "get_format",
    "register_format",
    "resolve",
    "validate_file",
    "validate_folder",
]
