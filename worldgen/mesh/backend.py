"""Backends of the ``mesh`` stage: ``sheet`` (default) and ``tsdf``.

Both read the panorama and its depth (semantics and Gaussians are not needed yet) and return a
MeshScene with parts "world", "sky" and "collision" (the sheet adds "background", the completed surfaces
hidden behind depth edges: worldgen/mesh/layers.py); the extractor's report (triangles before and
after, parts, texture size, timings) goes into the manifest.
"""

from __future__ import annotations

from ..errors import InputError
from ..layers.diffusion import with_run_prompt
from ..registry import Backend, StageContext, StageResult, register_backend
from .layers import LayeredSheetConfig, build_layered_sheet
from .sheet import SheetConfig, build_sheet
from .tsdf import TSDFConfig, build_tsdf


def _inputs(ctx: StageContext):
    pano = ctx.inputs.get("panorama")
    depth = ctx.inputs.get("depth")
    if pano is None or depth is None:
        raise InputError("the mesh stage needs a panorama and its depth; run the depth stage first")
    return pano, depth


def _run_sheet(ctx: StageContext) -> StageResult:
    pano, depth = _inputs(ctx)
    ctx.progress(0.0, "triangulating the panorama")
    if getattr(ctx.config, "walk_radius", 0) > 0:
        ctx.progress(0.0, "completing the surfaces hidden behind depth edges")
    config = with_run_prompt(ctx.config, ctx.request)  # the diffusion fill paints with the run's prompt
    scene = build_layered_sheet(pano, depth, config, ctx.inputs.get("semantics"), ctx.request.eye_height, seed=ctx.seed)
    ctx.progress(1.0, f"{scene.report['triangles_after']} triangles")
    return StageResult(artifacts={"mesh": scene}, report=scene.report)


def _run_tsdf(ctx: StageContext) -> StageResult:
    pano, depth = _inputs(ctx)
    ctx.progress(0.0, "fusing depth views")
    scene = build_tsdf(pano, depth, ctx.config, ctx.inputs.get("semantics"), ctx.request.eye_height)
    ctx.progress(1.0, f"{scene.report['triangles_after']} triangles")
    return StageResult(artifacts={"mesh": scene}, report=scene.report)


register_backend(
    Backend(
        stage="mesh",
        name="sheet",
        run=_run_sheet,
        summary="panorama grid mesh: closed seam, pole caps, depth-edge cuts, simplified, panorama as texture; "
        "textured background part behind depth edges out to the walk radius",
        config=LayeredSheetConfig,
        presets={
            "fast": {
                "grid_width": 512,
                "max_triangles": 100_000,
                "texture_width": 2048,
                # The layer at the demo panorama's own 1024 columns: on a coarser working grid
                # (nearest depth per block) the far side of every trunk loses a block and a
                # crack opens beside it (make demo's forest at 1 m: holes 0.44 % at 512, 0.34 %
                # at 1024; the layer build about twice as long).
                "layer_work_width": 1024,
                "layer_triangles": 15_000,
                # No foreground back (docs/walkable.md, "The foreground's own back"): out of the
                # 15k background share it left the rest too coarse (forest at 1 m: mean holes
                # 0.266 -> 0.279 %, worst view 0.895 -> 0.871 %; capture point -0.04 dB).
                "layer_back_triangles": 0,
                # Continued far ground left uncut by the grazing tests (docs/walkable.md, round 9):
                # its 15k-triangle part opened the cuts into specks (forest at 1 m: worst view
                # 0.598 -> 0.48 %); the balanced part keeps them (its capture point, 2048 forest).
                "layer_grazing": False,
            },
            "balanced": {},
            "quality": {"grid_width": 2048, "max_triangles": 500_000, "layer_triangles": 80_000},
        },
        # 14: the world's skirt (the foreground out to its silhouette pixels' edges) and its
        # backfill in the background's colour; the background keeps the foreground's colour only
        # at silhouettes without a skirt (docs/walkable.md, round 10).
        # 13: the background part drops its edge-on faces, and in the fast preset it is not cut
        # by the grazing tests (continued planes, not measured depth; docs/walkable.md, round 9).
        # 12: the world is simplified with the texture's colour in the error and gets what the
        # hidden geometry leaves of max_triangles (one budget for both).
        # 11: the world keeps its whole budget (the layers have their own); hidden geometry is
        # pushed behind what the capture point sees; the back's folded faces are dropped.
        version="14",
        models={"fill": "fill_model"},
    )
)
register_backend(
    Backend(
        stage="mesh",
        name="tsdf",
        run=_run_tsdf,
        summary="TSDF fusion of depth views (Open3D), marching cubes, simplified, UV atlas and baked texture",
        config=TSDFConfig,
        presets={
            "fast": {"resolution": 192, "max_triangles": 50_000, "texture_size": 1024},
            "balanced": {},
            "quality": {"resolution": 400, "max_triangles": 200_000, "texture_size": 4096},
        },
        version="1",
    )
)

__all__ = ["LayeredSheetConfig", "SheetConfig", "TSDFConfig", "build_layered_sheet", "build_sheet", "build_tsdf"]
