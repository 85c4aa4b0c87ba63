"""Engine presets: which formats, budgets and names suit each target application.

``resolve(engine, **overrides)`` gives the :class:`ExportSettings` the writers read; a user's
explicit option always beats the preset. See docs/engines.md for the import steps per engine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from worldgen.errors import InputError

from .settings import ExportSettings


@dataclass(frozen=True)
class EnginePreset:
    """Args:
    name: ``--engine`` value.
    formats: the formats written when the user names none.
    settings: field overrides of :class:`ExportSettings`.
    notes: one line on why, shown in the docs.
    """

    name: str
    formats: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: str = ""


ENGINES: dict[str, EnginePreset] = {
    e.name: e
    for e in (
        EnginePreset(
            "default",
            ("glb", "usdz", "ply", "spz"),
            {},
            "the sensible set: mesh as GLB and USDZ, splats as INRIA PLY and SPZ v2",
        ),
        EnginePreset(
            "unity",
            ("glb", "ply", "spz"),
            {"spz_version": 2},
            "glTFast for the mesh; aras-p UnityGaussianSplatting reads the PLY and SPZ v2 only",
        ),
        EnginePreset(
            "unreal",
            ("glb", "usdz", "ply"),
            {"collision_prefix": "UCX_"},
            "Interchange glTF with UCX_ collision names; USD stage import honours UsdPhysics; "
            "splat plugins (XScene, Luma) read INRIA PLY",
        ),
        EnginePreset(
            "blender", ("glb", "usdz", "ply"), {}, "glTF and USD importers are built in; splat add-ons read INRIA PLY"
        ),
        EnginePreset(
            "omniverse", ("usdz", "splat-usdz"), {}, "USD everywhere; Kit 110+ renders ParticleField3DGaussianSplat"
        ),
        EnginePreset(
            "web",
            ("glb", "splat-glb", "spz"),
            {"spz_version": 3, "max_texture_size": 2048, "collision": "file"},
            "three.js/Babylon/PlayCanvas load KHR_gaussian_splatting GLB; Spark reads SPZ <= v3; "
            "2048 textures for mobile; collision.glb for viewers that take one",
        ),
    )
}


def get_engine(name: str | None) -> EnginePreset:
    """The preset called ``name`` (None -> "default"); InputError naming the choices otherwise."""
    key = (name or "default").strip().lower()
    if key not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}")
    return ENGINES[key]


def resolve(engine: str | None = None, **overrides: Any) -> ExportSettings:
    """Settings for ``engine`` with ``overrides`` (None values mean "use the preset")."""
    preset = get_engine(engine)
    values = dict(preset.settings)
    known = {f.name for f in dataclasses.fields(ExportSettings)}
    for k, v in overrides.items():
        if k not in known:
            raise InputError(f"unknown export option {k!r}; options are: {', '.join(sorted(known - {'engine'}))}")
        if v is not None:
            values[k] = v
    values["engine"] = preset.name
    return ExportSettings(**values)
