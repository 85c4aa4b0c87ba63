"""The concrete settings every writer reads (an engine preset resolved with the user's overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from worldgen.errors import InputError


@dataclass(frozen=True)
class ExportSettings:
    """What the writers need to know; built by :func:`worldgen.exporters.engines.resolve`.

    Args:
        engine: the target the settings were resolved for ("default", "unity", "unreal"...).
        max_triangles_per_chunk: the mesh GLB/USD split a part into pieces of at most this many
            triangles (engines choke on single meshes of several million). Default 1,000,000.
        max_texture_size: textures are resized to a power of two no larger than this, pixels.
            Default 4096.
        texture_format: "jpeg" (small, photographic textures) or "png" (lossless). Default "jpeg".
        jpeg_quality: 1..100. Default 90.
        unlit: mark materials KHR_materials_unlit (optional extension; the PBR fallback is
            base colour, metallic 0, roughness 0.9), right for baked-lighting worlds. Default True.
        collision: "node" (collision mesh as its own node/prim of the world file), "file"
            (a separate ``collision.glb``), or "none". Default "node".
        collision_prefix: prefix of the collision node name; "UCX_" for Unreal's convention.
        spz_version: SPZ version written: 2 (aras-p Unity, Spark, splat-transform, Niantic) or
            3 (Spark, splat-transform, Niantic; smaller rotations). Default 2.
        far_plane: the target's default camera far clip distance, metres; the mesh writers put
            the sky dome and fold distant geometry inside it (see ``placement.py``). 0 = no
            limit (the scene is written as built). Default 1000 (Unity's default camera).
    """

    engine: str = "default"
    max_triangles_per_chunk: int = 1_000_000
    max_texture_size: int = 4096
    texture_format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = 90
    unlit: bool = True
    collision: Literal["node", "file", "none"] = "node"
    collision_prefix: str = ""
    spz_version: int = 2
    far_plane: float = 1000.0

    def __post_init__(self) -> None:
        if self.max_triangles_per_chunk < 1:
            raise InputError("max_triangles_per_chunk must be >= 1")
        if self.max_texture_size < 1 or self.max_texture_size > 16384:
            raise InputError("max_texture_size must lie in 1..16384 pixels (4096 is safe everywhere)")
        if self.texture_format not in ("jpeg", "png"):
            raise InputError(f"unknown texture format {self.texture_format!r}; use 'jpeg' or 'png'")
        if not 1 <= self.jpeg_quality <= 100:
            raise InputError("jpeg_quality must lie in 1..100")
        if self.collision not in ("node", "file", "none"):
            raise InputError(f"unknown collision mode {self.collision!r}; use 'node', 'file' or 'none'")
        if not (self.far_plane == 0 or 10.0 <= self.far_plane <= 1e7):
            raise InputError(
                f"far_plane {self.far_plane} m is out of range; give the camera's far clip in metres (10..1e7), or 0 for no limit"
            )
        if self.spz_version not in (2, 3):
            raise InputError(
                f"SPZ version {self.spz_version} is not written; use 2 (Unity aras-p, Spark) or 3 "
                "(Spark, splat-transform); for v4 convert with `splat-transform --spz-version 4`"
            )
