"""The "refine" backend of the gaussians stage: init_gaussians, then refinement per preset.

Registered as gaussians/refine. ``fast`` only initialises (no optimisation); every preset
adds splats on the hidden background completed behind depth edges
(:func:`worldgen.splats.backfill.layer_gaussians`, :mod:`worldgen.layers`); ``balanced`` and
``quality`` then refine
against views of the panorama with gsplat on CUDA or the PyTorch rasterizer on CPU (see
:mod:`worldgen.splats.refine` and docs/splats.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ..errors import InputError
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import GaussianCloud
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
        init_footprint: tangent standard deviation of a pixel splat as a fraction of its pixel's
            footprint (:class:`worldgen.splats.init.InitConfig`'s ``footprint_sigma``). Default
            0.35: narrower than init's 0.6, which blurred every view by ~0.8 px; the gaps this
            opens between splats are filled by the backing layer (docs/splats.md). 0.25 scored
            better on the procedural coast but 0.2-0.5 dB worse on independently rendered scenes
            ("The open coast"), so it is not the default.
        init_edge_shrink: factor on the footprint, across a depth edge, of a pixel splat on the
            near side of it (:class:`worldgen.splats.init.InitConfig`'s ``edge_shrink``). Default
            0.5: the near splat is composited first, so its tail lay over the sky or ground beside
            every far palm, post and rock; the backing layer behind the edge holds the
            background there, so the narrowed rim opens no gap.
        backing_factor: add :func:`worldgen.splats.init.backing_gaussians`, one splat per block of
            this many panorama pixels square behind the pixel splats (they count towards the
            splat budget); 0 = none. Default 2.
        backing_push: distance factor of the backing splats behind the surface. Default 1.03.
        sky_backing_factor: with ``walk_radius`` > 0, add
            :func:`worldgen.splats.backfill.sky_backing_gaussians`, sky-dome splats on blocks of
            this many panorama pixels square behind every surface a viewer within the walk
            radius may see past to the sky (they count towards the splat budget, with the fill);
            0 = none. Default 4.
        cpu_max_splats: when refinement runs on the CPU rasterizer and ``max_splats`` is 0, merge
            to at most this many splats, so a CPU run's time stays bounded whatever the panorama
            size (a 2048x1024 panorama has 2.1M pixels; the CPU presets are sized for ~0.5M).
            0 = never merge. Default 600000.
        walk_radius: when refining, add splats on the hidden background completed behind every
            depth edge (:func:`worldgen.splats.backfill.layer_gaussians`: background planes
            continued, colour inpainted) out to what a viewer this many metres from the capture
            point sees, so disocclusions show background instead of holes; they count towards
            the splat budget. 0 = none (then ``backfill_deg`` applies). Default 2.0.
        inpaint: registered inpainter of the hidden colour (default "auto": "diffusion" with a fill
            model, else "patchmatch").
        fill_model, fill_prompt, fill_steps: the "diffusion" inpainter's pipeline (filled from
            ``--model fill=...``), prompt ("" = the run's prompt, else a neutral one) and steps.
        backfill_deg: the previous fill, used only when ``walk_radius`` is 0: splats that carry
            the far side of every depth edge this many degrees in behind the nearer surface
            (:func:`worldgen.splats.backfill.backfill_gaussians`, a smear). 0 = none. Default 8.
    """

    max_splats: int = 0
    init_sh_degree: int = 0
    init_opacity: float = 0.95
    init_sky: Literal["dome", "drop"] = "dome"
    init_footprint: float = 0.35
    init_edge_shrink: float = 0.5
    backing_factor: int = 2
    backing_push: float = 1.03
    sky_backing_factor: int = 4
    cpu_max_splats: int = 600_000
    backfill_deg: float = 8.0
    walk_radius: float = 2.0
    inpaint: str = "auto"
    fill_model: str = ""
    fill_prompt: str = ""
    fill_steps: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backfill_deg < 0:
            raise InputError("backfill_deg must be >= 0 degrees (0 = no backfill)")
        if (
            self.backing_factor < 0
            or self.sky_backing_factor < 0
            or not self.backing_push > 1
            or not self.init_footprint > 0
        ):
            raise InputError(
                "backing_factor and sky_backing_factor must be >= 0, backing_push > 1 and init_footprint > 0"
            )
        if not 0 < self.init_edge_shrink <= 1:
            raise InputError(f"init_edge_shrink {self.init_edge_shrink} must lie in (0, 1] (1 = off)")
        from ..layers import LayerConfig

        LayerConfig(walk_radius=self.walk_radius, inpaint=self.inpaint)  # checks both


def _run(ctx: StageContext) -> StageResult:
    from ..layers import LayerConfig, build_layers
    from ..layers.diffusion import fill_options, with_run_prompt
    from .backfill import backfill_gaussians, layer_gaussians, sky_backing_gaussians
    from .init import InitConfig, _merge_groups, init_gaussians, splat_layers
    from .refine import choose_device

    cfg: RefineStageConfig = ctx.config
    pano, depth = ctx.inputs["panorama"], ctx.inputs["depth"]
    refine_fields = {f.name for f in dataclasses.fields(RefineConfig)}
    rcfg = RefineConfig(**{k: getattr(cfg, k) for k in refine_fields})
    budget = cfg.max_splats
    rasterizer = choose_device(rcfg)[0]
    refining = (cfg.iterations if rasterizer == "gsplat" else cfg.cpu_iterations) > 0
    if budget == 0 and cfg.cpu_max_splats > 0 and refining and rasterizer == "cpu":
        budget = cfg.cpu_max_splats
    total_budget = budget
    init_cfg = InitConfig(
        max_splats=budget,
        sh_degree=cfg.init_sh_degree,
        opacity=cfg.init_opacity,
        sky=cfg.init_sky,
        footprint_sigma=cfg.init_footprint,
        edge_shrink=cfg.init_edge_shrink,
    )
    extra = None
    backing = None
    # The hidden layer goes into every output, unrefined (fast) included: without it a viewer who
    # steps aside sees the empty background beside every silhouette (a black "shadow" of each
    # tree). The old band backfill stays tied to refinement, as before.
    if cfg.walk_radius > 0 or (refining and cfg.backfill_deg > 0):
        ctx.progress(0.0, "completing the surfaces hidden behind depth edges")
        n_pixels = int(np.logical_or.reduce(splat_layers(depth, cfg.init_sky)).sum())
        # A merged cloud gets fill splats of its own size (its equivalent pixel step).
        step = max(1, round(math.sqrt(n_pixels / budget))) if budget and n_pixels > budget else 1
        if not refining:
            # Unrefined and unmerged (fast): the layer at most 1024 columns wide, as the mesh
            # builds it, so a 2048x1024 world does not pay 4x for its hidden surfaces.
            step = max(step, math.ceil(depth.shape[1] / 1024))
        # The fill takes the pixel splats' footprint: wider fill splats stick out beside every
        # silhouette, in their fixed inpainted colours (coast, refined, 256 px, 0.5 m: 37.57 dB
        # with init's 0.6 against 37.78 with 0.35)
        fill_cfg = init_cfg
        if cfg.walk_radius > 0:
            fill = fill_options(with_run_prompt(cfg, ctx.request))  # the diffusion fill's model and prompt
            layer = build_layers(
                pano,
                depth,
                LayerConfig(
                    walk_radius=cfg.walk_radius, work_width=max(8, depth.shape[1] // step), inpaint=cfg.inpaint, **fill
                ),
                seed=ctx.seed,
            )
            extra = layer_gaussians(
                pano,
                depth,
                cfg.walk_radius,
                step=step,
                config=fill_cfg,
                layer=layer,
            )
            if cfg.sky_backing_factor > 0:
                # Sky behind every outline against the sky, hidden surfaces' included: where a
                # continued hidden surface meets hidden sky, stepping aside opens a gap between
                # them with nothing behind (make demo's hole beside a canopy top; docs/splats.md,
                # "Sky behind the crowns"). Fixed colours, like the fill.
                sky_back = sky_backing_gaussians(
                    pano,
                    depth,
                    cfg.walk_radius,
                    layer=layer,
                    factor=cfg.sky_backing_factor * step,
                    push=cfg.backing_push,
                    config=replace(init_cfg, footprint_sigma=InitConfig.footprint_sigma),
                )
                extra = GaussianCloud.concatenate([extra, sky_back])
        else:
            extra = backfill_gaussians(pano, depth, cfg.backfill_deg, step=step, config=fill_cfg)
        if budget:
            budget = max(1, budget - len(extra))  # the whole cloud stays within the budget
            init_cfg = replace(init_cfg, max_splats=budget)
    if cfg.backing_factor > 0:
        # Within the budget too, after the fill (docs/splats.md, "Capture-point sharpness").
        backing, budget = _backing(pano, depth, cfg, init_cfg, budget, refining)
        init_cfg = replace(init_cfg, max_splats=budget)
    ctx.progress(0.0, "initialising splats")
    cloud = init_gaussians(
        pano, depth, init_cfg, semantics=ctx.inputs.get("semantics"), eye_height=ctx.request.eye_height
    )
    n_init = len(cloud)
    if backing is not None and len(backing):
        # Refined with the pixel splats (both colour solves see it), unlike the hidden layer.
        cloud = GaussianCloud.concatenate([cloud, backing])
    if backing is not None and len(backing) and rcfg.cpu_view_size == 0:
        # The pixel splats' own resolution, which native_view_size would misjudge from a count
        # that includes the backing and init's polar merge (it only joins pixels narrower than
        # half their height; the equator keeps one splat per pixel).
        shown = np.logical_or.reduce(splat_layers(depth, cfg.init_sky))
        merged = init_cfg.max_splats and int(shown.sum()) > init_cfg.max_splats
        rows = _merge_groups(splat_layers(depth, cfg.init_sky), init_cfg.max_splats)[2] if merged else 1
        rcfg = replace(rcfg, cpu_view_size=int(min(384, max(64, 8 * round(depth.shape[1] / rows / 32)))))
    # The optimiser leaves the backing's shapes alone (it is the floor under the pixel splats).
    frozen = None if backing is None or not len(backing) else np.arange(len(cloud)) >= n_init
    out, report = refine_gaussians(
        cloud, pano, depth, rcfg, seed=ctx.seed, progress=ctx.progress, backfill=extra, frozen=frozen
    )
    if not refining and extra is not None and len(extra):
        out = GaussianCloud.concatenate([out, extra])  # refine_gaussians returns early without refining
        report["n_gaussians_backfill"] = len(extra)
        report["n_gaussians_out"] = len(out)
    report["init_splat_budget"] = total_budget
    report["n_gaussians_init"] = n_init
    report["n_gaussians_backing"] = 0 if backing is None else len(backing)
    return StageResult(artifacts={"gaussians": out}, report=report)


def _backing(pano, depth, cfg: RefineStageConfig, init_cfg, budget: int, refining: bool):
    """(backing splats, the pixel splats' remaining budget) for ``cfg.backing_factor``.

    The blocks are ``backing_factor`` times the pixel splats' own step (a merged cloud's
    equivalent pixel step; 1024 columns at most when nothing is refined, as the fill). Under a
    budget they are coarsened until the pixel splats keep their merge level (with at most
    init's polar merge, which only joins pixels narrower than half their height): a merge one
    level coarser would halve the pixel splats' resolution everywhere.
    """
    from .init import InitConfig, _merge_groups, backing_gaussians, splat_layers

    shown = np.logical_or.reduce(splat_layers(depth, cfg.init_sky))
    n_pixels = int(shown.sum())
    step = max(1, round(math.sqrt(n_pixels / budget))) if budget and n_pixels > budget else 1
    if not refining:
        step = max(step, math.ceil(depth.shape[1] / 1024))

    def level(b: int) -> int:
        return 0 if n_pixels <= b else _merge_groups(splat_layers(depth, cfg.init_sky), b)[2]

    factor = cfg.backing_factor * step
    # Init's default footprint for these: they are the smooth floor under the narrow pixel
    # splats, so they must overlap without gaps on their own.
    bcfg = replace(init_cfg, footprint_sigma=InitConfig.footprint_sigma)
    allowed = max(level(budget), 1) if budget else 0
    while True:
        backing = backing_gaussians(pano, depth, factor, cfg.backing_push, bcfg)
        if not budget:
            return backing, budget
        rest = budget - len(backing)
        if rest >= 1 and level(rest) <= allowed:
            return backing, rest
        if len(backing) <= 64:
            return None, budget  # a budget too small for any: the pixel splats keep all of it
        factor += max(1, factor // 4)


register_backend(
    Backend(
        stage="gaussians",
        name="refine",
        run=_run,
        summary="one splat per pixel, then refined against 90° views (gsplat on CUDA, PyTorch rasterizer on CPU)",
        config=RefineStageConfig,
        presets=PRESETS,
        # 15: CPU renders and colour solves split in two (tile rows, view groups) for a helper
        # process; the last bits of the refined cloud change (docs/splats.md, "A helper process").
        version="15",
        models={"fill": "fill_model"},
    )
)

__all__ = ["RefineStageConfig"]
