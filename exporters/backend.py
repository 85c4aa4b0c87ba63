"""The export stage's backend "assets": writes engine-ready files from the run's mesh and splats."""

from __future__ import annotations

from dataclasses import dataclass

from worldgen.errors import InputError
from worldgen.registry import Backend, StageContext, StageResult, register_backend

from .engines import get_engine, resolve
from .registry import export_assets, get_format


@dataclass(frozen=True)
class ExportConfig:
    """Options of the "assets" export backend.

    Args:
        formats: format names to write (see ``worldgen.exporters.available_formats()``); empty ->
            the engine preset's set. Default empty.
        engine: "default", "unity", "unreal", "godot", "blender", "omniverse" or "web". Default "default".
        max_triangles_per_chunk: override of the preset's mesh chunk size (triangles), or None.
        max_texture_size: override of the preset's largest texture side (pixels), or None.
        texture_format: "jpeg" or "png" override, or None.
        unlit: KHR_materials_unlit on/off override, or None.
        collision: "node", "file" or "none" override, or None.
        spz_version: 2 or 3 override, or None.
        far_plane: override of the preset's camera far plane (metres, 0 = no limit), or None.
    """

    formats: tuple[str, ...] = ()
    engine: str = "default"
    max_triangles_per_chunk: int | None = None
    max_texture_size: int | None = None
    texture_format: str | None = None
    unlit: bool | None = None
    collision: str | None = None
    spz_version: int | None = None
    far_plane: float | None = None


def _run(ctx: StageContext) -> StageResult:
    cfg: ExportConfig = ctx.config
    preset = get_engine(cfg.engine)
    names = list(cfg.formats) if cfg.formats else list(preset.formats)
    for n in names:
        get_format(n)
    settings = resolve(
        preset.name,
        max_triangles_per_chunk=cfg.max_triangles_per_chunk,
        max_texture_size=cfg.max_texture_size,
        texture_format=cfg.texture_format,
        unlit=cfg.unlit,
        collision=cfg.collision,
        spz_version=cfg.spz_version,
        far_plane=cfg.far_plane,
    )
    mesh, gaussians = ctx.inputs.get("mesh"), ctx.inputs.get("gaussians")
    if mesh is None and gaussians is None:
        raise InputError("the export stage needs a mesh or gaussians; run the mesh or gaussians stage first")
    ctx.progress(0.0, f"exporting {', '.join(names)}")
    files, report = export_assets(mesh, gaussians, names, settings)
    ctx.progress(1.0, f"wrote {len(files)} file(s)")
    return StageResult(files=files, report=report)


register_backend(
    Backend(
        stage="export",
        name="assets",
        run=_run,
        summary="engine-ready GLB, USD/USDZ, splat PLY/SPZ/.splat/KHR GLB, USD ParticleField",
        config=ExportConfig,
        presets={},
        version="2",  # 2: collision as OMI physics shape, sky files, far-plane fitting
    )
)
