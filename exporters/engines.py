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
            {"far_plane": 1000.0},
            "the sensible set: mesh as GLB and USDZ, splats as INRIA PLY and SPZ v2; "
            "sky inside a 1,000 m far plane (Unity's default camera, the tightest of the common engines but Blender's)",
        ),
        EnginePreset(
            "unity",
            ("glb", "ply", "spz"),
            {"spz_version": 2, "far_plane": 1000.0},
            "glTFast for the mesh (default camera far plane 1,000 m); aras-p UnityGaussianSplatting reads the PLY and SPZ v2 only",
        ),
        EnginePreset(
            "unreal",
            ("glb", "usdz", "ply"),
            {"collision_prefix": "UCX_", "far_plane": 0.0},
            "Interchange glTF with UCX_ collision names; USD stage import honours UsdPhysics; "
            "splat plugins (XScene, Luma) read INRIA PLY; the default camera has an infinite far plane",
        ),
        EnginePreset(
            "blender",
            ("glb", "usdz", "ply"),
            {"far_plane": 100.0},
            "glTF and USD importers are built in; splat add-ons read INRIA PLY; a new camera clips at 100 m",
        ),
        EnginePreset(
            "godot",
            ("glb", "ply"),
            {"far_plane": 4000.0},
            "Godot 4 imports OMI_physics_shape/OMI_physics_body collision natively; Camera3D far is 4,000 m",
        ),
        EnginePreset(
            "omniverse",
            ("usdz", "splat-usdz"),
            {"far_plane": 0.0},
            "USD everywhere; Kit 110+ renders ParticleField3DGaussianSplat; USD cameras clip at 1,000,000 units",
        ),
        EnginePreset(
            "web",
            ("glb", "splat-glb", "spz"),
            {"spz_version": 3, "max_texture_size": 2048, "collision": "file", "far_plane": 2000.0},
            "three.js/Babylon/PlayCanvas load KHR_gaussian_splatting GLB; Spark reads SPZ <= v3; "
            "2048 textures for mobile; collision.glb for viewers that take one; three.js cameras clip at 2,000 m",
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
