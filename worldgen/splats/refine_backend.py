"""The "refine" backend of the gaussians stage: init_gaussians, then refinement per preset.

Registered as gaussians/refine. ``fast`` only initialises (no optimisation); ``balanced`` and
``quality`` refine against views of the panorama with gsplat on CUDA or the PyTorch rasterizer
on CPU (see :mod:`worldgen.splats.refine` and docs/splats.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ..registry import Backend, StageContext, StageResult, register_backend
from .refine import PRESETS, RefineConfig, refine_gaussians


@dataclass(frozen=True)
class RefineStageConfig(RefineConfig):
    """RefineConfig's fields plus the initialisation options of :class:`worldgen.splats.init.InitConfig`.

    Args:
        max_splats: merge pixels to at most this many splats at initialisation (the same option as the
            `init` backend, so `--max-splats` means one thing); 0 = one per pixel. Default 0.
        init_sh_degree: SH degree of the splats (0-3). Default 0.
        init_opacity: initial opacity in (0, 1). Default 0.95.
        init_sky: "dome" (sky splats on a far sphere) or "drop". Default "dome".
    """

    max_splats: int = 0
    init_sh_degree: int = 0
    init_opacity: float = 0.95
    init_sky: Literal["dome", "drop"] = "dome"


def _run(ctx: StageContext) -> StageResult:
    from .init import InitConfig, init_gaussians

    cfg: RefineStageConfig = ctx.config
    pano, depth = ctx.inputs["panorama"], ctx.inputs["depth"]
    init_cfg = InitConfig(max_splats=cfg.max_splats, sh_degree=cfg.init_sh_degree,
                          opacity=cfg.init_opacity, sky=cfg.init_sky)
    ctx.progress(0.0, "initialising splats")
    cloud = init_gaussians(pano, depth, init_cfg, semantics=ctx.inputs.get("semantics"),
                           eye_height=ctx.request.eye_height)
    refine_fields = {f.name for f in dataclasses.fields(RefineConfig)}
    rcfg = RefineConfig(**{k: getattr(cfg, k) for k in refine_fields})
    out, report = refine_gaussians(cloud, pano, depth, rcfg, seed=ctx.seed, progress=ctx.progress)
    return StageResult(artifacts={"gaussians": out}, report=report)


register_backend(Backend(
    stage="gaussians",
    name="refine",
    run=_run,
    summary="one splat per pixel, then refined against 90° views (gsplat on CUDA, PyTorch rasterizer on CPU)",
    config=RefineStageConfig,
    presets=PRESETS,
    version="2",
))

__all__ = ["RefineStageConfig"]
