"""The ``init`` backend of the gaussians stage: splats initialised from RGB-D, no refinement."""

from __future__ import annotations

from ..errors import InputError
from ..registry import Backend, StageContext, StageResult, register_backend
from .init import InitConfig, init_gaussians


def _run(ctx: StageContext) -> StageResult:
    pano = ctx.inputs.get("panorama")
    depth = ctx.inputs.get("depth")
    if pano is None or depth is None:
        raise InputError("the gaussians stage needs a panorama and its depth; run the depth stage first")
    ctx.progress(0.0, "initialising splats")
    cloud = init_gaussians(pano, depth, ctx.config, ctx.inputs.get("semantics"), ctx.request.eye_height)
    n_sky = int(depth.sky.sum()) if ctx.config.sky == "dome" and not ctx.config.max_splats else None
    report = {
        "splats": len(cloud),
        "sh_degree": cloud.sh_degree,
        "sky": ctx.config.sky,
        "max_splats": ctx.config.max_splats,
        "sky_splats": n_sky,
    }
    ctx.progress(1.0, f"{len(cloud)} splats")
    return StageResult(artifacts={"gaussians": cloud}, report=report)


register_backend(
    Backend(
        stage="gaussians",
        name="init",
        run=_run,
        summary="one Gaussian per pixel on its ray (footprint scales, depth normals, sky dome); no refinement",
        config=InitConfig,
        presets={"fast": {"max_splats": 500_000}, "balanced": {}, "quality": {}},
        version="2",
    )
)

__all__ = ["InitConfig", "init_gaussians"]
