"""Refine initial Gaussians against views of the panorama (gsplat on CUDA, the PyTorch rasterizer elsewhere).

Schedule: a direct colour solve on the capture views (:mod:`worldgen.splats.colours`), an Adam
loop over shapes, opacities and colours (sky-dome splats frozen), backfill splats appended
(:mod:`worldgen.splats.backfill`), and a second colour solve for the final shapes.

The loss per step is ``(1 - l_ssim) * L1 + l_ssim * (1 - SSIM)`` on colour over supervised pixels,
plus ``lambda_depth`` x the L1 of log expected depth against the view's depth, ``lambda_sky`` x
the mean alpha over sky pixels when the cloud has no sky splats (so nothing floats in front of
the sky), and regularisers: ``lambda_opacity`` x mean opacity and ``lambda_scale`` x the mean of
each splat's largest scale relative to its distance from the capture point, plus an anisotropy
penalty on scale ratios above ``max_anisotropy``. Densify/prune uses gsplat's DefaultStrategy
(pure torch, so it runs on CPU too, fed by the CPU rasterizer's 2D-mean gradients) or, on CUDA
only, MCMCStrategy.

Deterministic on CPU for a fixed seed: view order comes from a seeded generator, and the only
global-RNG user (the strategy's split sampling) runs under a forked, seeded torch RNG.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..errors import BackendUnavailableError, InputError
from ..evaluation.views import psnr
from ..types import SH_C0, DepthMap, GaussianCloud, Panorama
from .colours import solve_colours
from .rasterize import _gsplat_ready, cameras_to_gsplat, rasterize, select_rasterizer, torch_threads
from .views import TrainingView, capture_views, warped_views
from .workers import CpuWorker, helper_count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineConfig:
    """Hyper-parameters of splat refinement.

    Args:
        iterations: optimisation steps on CUDA (gsplat). 0 = no refinement. Default 1500.
        view_size: capture-view size on CUDA, pixels (90° views). Default 512.
        cpu_iterations: steps when the CPU rasterizer runs (it is ~100x slower). Default 300.
        cpu_view_size: view size on CPU, pixels; 0 = the splats' own resolution (a quarter of the
            panorama width, or of the equivalent width of a merged cloud, sqrt(2 N)), between 64
            and 384. Default 0.
        colour_iterations: iterations of the direct colour solve
            (:func:`worldgen.splats.colours.solve_colours`) run on the capture views before the
            optimiser and again after it; 0 = off. Default 10.
        colour_anchor: weight of the pull of every colour solve towards the colours before
            refinement (:func:`worldgen.splats.colours.solve_colours`' ``anchor_weight``; a pixel
            splat's is the panorama's at its pixel; after a densification strategy, which changes
            the splats, the final solve holds each to its refined colour); 0 = none, the default.
            It trades capture-point
            fit for fewer light or dark outlines beside silhouettes seen from aside (background
            splats that the solve recoloured to cancel a nearer splat's rim): 0.2 gave an
            independently rendered room +0.27 dB at 1 m (the view with its worst outline +1.9
            dB) for -0.26 dB at the capture point, but cost a forest 0.4 dB there and 0.1-0.2 dB
            at 0.5-1 m (docs/splats.md, "Outlines beside silhouettes").
        views_per_step: cameras rendered per step (one batched call). Default 1.
        warp_baseline: distance of the warped small-baseline cameras from the capture point,
            metres; 0 = capture views only. Default 0 (on the village benchmark world warped
            views lowered novel-view PSNR by ~1 dB: their forward-splatted images are blurrier
            than the capture views; docs/splats.md).
        warp_positions: number of warped camera positions (each with 8 horizontal views). Default 4.
        warp_weight: loss weight of a warped view relative to a capture view. Default 0.5.
        lambda_dssim: weight of D-SSIM against L1 in the colour loss. Default 0.2.
        lambda_depth: weight of the log-depth L1. Default 0.05.
        lambda_sky: weight of the alpha penalty on sky pixels (only when the cloud has no sky splats). Default 0.05.
        lambda_opacity: weight of mean opacity (pushes unused splats towards transparency). Default 0.0.
        lambda_scale: weight of largest-scale / distance. Default 0.01.
        max_anisotropy: largest / middle scale ratio above which the needle penalty starts. Default 10.
        strategy: densify/prune on CUDA: "default" (gsplat DefaultStrategy), "mcmc" or "none".
        cpu_strategy: densify/prune on CPU: "default" or "none" (default: in 200-step CPU runs
            DefaultStrategy cost ~8x the time for -0.5 dB held-out PSNR; see docs/splats.md).
        densify_grad: DefaultStrategy's grow_grad2d threshold. Default 0.0002.
        prune_opacity: splats under this opacity are pruned. Default 0.005.
        max_gaussians: densification stops growing past this count. Default 3_000_000.
        lr_means: position learning rate, times the scene scale (median depth), metres. Default 1.6e-4.
        lr_scales, lr_quats, lr_opacities, lr_sh0: Adam learning rates (gsplat's trainer defaults).
        lr_shn_factor: higher SH bands learn this much slower than the DC term. Default 1/20.
        cpu_lr_scale: on CPU, the learning rates of positions, rotations, scales and opacities
            (not colours) are multiplied by this: a short CPU run (the balanced preset's 60
            steps) moves shapes as far as a longer one would. Default 1.
        lr_means_final: the position learning rate decays exponentially to this fraction of
            ``lr_means`` by the last step (gsplat's trainer schedule). Default 0.01.
        cpu_threads: torch threads on the CPU path (restored afterwards). Default 1: a step is
            hundreds of small tensor ops, and with other processes on the cores OpenMP's
            synchronisation made 2 threads 3-5x slower than 1 (docs/splats.md); a fixed count
            also keeps the result bit-identical from run to run.
        cpu_workers: processes sharing the CPU path's work, the caller included: with 2 a helper
            process (:mod:`worldgen.splats.workers`) bins and composites the odd tile rows of
            every render of the loop and holds and sums over every other view of the colour
            solves, while the caller does the rest (the second core without OpenMP). The work is
            split in two whatever this is, so the bytes do not depend on it; with one core (or
            inside a daemonic process) the caller does both halves in turn. Default 2.
        freeze_sky: the optimiser leaves sky-dome splats (farther than 1.02 x the farthest
            surface) alone; their colours come from the colour solve. The dome has no parallax to
            learn, and fitting its shapes to one view size cost ~2 dB on the sky when the same
            world was viewed at twice that size (docs/splats.md). Default True.
        learn_rotations: let the optimiser turn the splats. Default False: init_gaussians lays
            each splat flat on the surface the depth map gives, and the capture views, all from
            one point, cannot tell a disc's tilt (turned, it still covers the same pixels from
            there); the turned discs stood out of their surfaces at novel views (street, 256 px,
            0.5 m: floaters 1.42 % before refinement, 1.55 % after, 1.40 % with the initial
            rotations put back; docs/splats.md, "Floaters").
        max_scale_growth: no axis of a splat grows past this factor times its initial scale
            (scales may shrink freely); 0 = no bound. Applied when no densification runs (it
            reorders the splats). Default 1.1: grown splats spread over the background beside
            silhouettes, nearer than it (docs/splats.md, "Floaters").
        device: "auto" (gsplat on CUDA when it works, else CPU), "cpu" or "cuda".
    """

    iterations: int = 1500
    view_size: int = 512
    cpu_iterations: int = 300
    cpu_view_size: int = 0
    cpu_lr_scale: float = 1.0
    colour_iterations: int = 10
    colour_anchor: float = 0.0
    views_per_step: int = 1
    warp_baseline: float = 0.0
    warp_positions: int = 4
    warp_weight: float = 0.5
    lambda_dssim: float = 0.2
    lambda_depth: float = 0.05
    lambda_sky: float = 0.05
    lambda_opacity: float = 0.0
    lambda_scale: float = 0.01
    max_anisotropy: float = 10.0
    strategy: Literal["default", "mcmc", "none"] = "default"
    cpu_strategy: Literal["default", "none"] = "none"
    densify_grad: float = 0.0002
    prune_opacity: float = 0.005
    max_gaussians: int = 3_000_000
    lr_means: float = 1.6e-4
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shn_factor: float = 0.05
    lr_means_final: float = 0.01
    cpu_threads: int = 1
    cpu_workers: int = 2
    freeze_sky: bool = True
    learn_rotations: bool = False
    max_scale_growth: float = 1.1
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        # A bad option fails when the config is built (the runner builds every stage's config
        # before running any), not minutes later when the stage starts.
        _check_config(self)


_CPU_TILE_PARTS = 2
"""On CPU each render of the loop is binned and composited in two pieces of alternate tile rows,
the second in the helper when there is one. Halves: the caller's projection, loss and autograd
work must wait for the composite either way, so only the binning and compositing overlap (256 px
room step, caller's CPU: 0.39 s alone, 0.26 s with halves, 0.31 s with the helper taking two rows
in three). Fixed, so the bytes do not depend on the number of processes."""

PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"iterations": 0, "cpu_iterations": 0},
    "balanced": {"iterations": 1500, "view_size": 512, "cpu_iterations": 80, "cpu_view_size": 0, "cpu_lr_scale": 3.0},
    "quality": {
        "iterations": 5000,
        "view_size": 768,
        "views_per_step": 2,
        "cpu_iterations": 1000,
        "cpu_view_size": 0,
        "colour_iterations": 20,
    },
}
"""Preset name -> RefineConfig overrides. On CPU, ``balanced`` is sized to finish a 1024x512 world
(524k splats) in about 80-90 s of CPU on one core (the whole stage, hidden layer included): two
colour solves of ~10 s and 80 steps of ~0.4 s at 256 px with the shape learning rates tripled
(``cpu_lr_scale``); with the helper process on a second core (``cpu_workers``) the caller's share
is about two thirds of that (docs/splats.md, "A helper process on the second core"). The colour
solve gives most of the gain; 300 steps (the previous preset, ~5 minutes) added little more at
novel views and lowered held-out capture views (docs/splats.md has the measurements)."""


def _check_config(cfg: RefineConfig) -> None:
    if cfg.iterations < 0 or cfg.cpu_iterations < 0:
        raise InputError("refine iterations must be >= 0")
    if cfg.view_size < 16 or (cfg.cpu_view_size != 0 and cfg.cpu_view_size < 16):
        raise InputError("refine view sizes must be at least 16 pixels (cpu_view_size 0 = automatic)")
    if cfg.colour_iterations < 0:
        raise InputError("colour_iterations must be >= 0")
    if not cfg.colour_anchor >= 0:
        raise InputError(f"colour_anchor {cfg.colour_anchor} must be >= 0 (0 = none)")
    if cfg.views_per_step < 1:
        raise InputError("views_per_step must be at least 1")
    if cfg.strategy not in ("default", "mcmc", "none"):
        raise InputError(f"unknown densification strategy {cfg.strategy!r}; use default, mcmc or none")
    if cfg.cpu_strategy not in ("default", "none"):
        raise InputError(
            f"cpu_strategy {cfg.cpu_strategy!r} is not available on CPU; use default or none "
            "(mcmc needs gsplat's CUDA kernels)"
        )
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise InputError(f"unknown device {cfg.device!r}; use auto, cpu or cuda")
    if cfg.warp_baseline < 0:
        raise InputError("warp_baseline must be >= 0 metres")
    if cfg.cpu_threads < 1:
        raise InputError("cpu_threads must be at least 1")
    if cfg.cpu_workers < 1:
        raise InputError("cpu_workers must be at least 1 (1 = no helper process)")
    if not cfg.cpu_lr_scale > 0:
        raise InputError("cpu_lr_scale must be > 0")
    if cfg.max_scale_growth != 0 and not cfg.max_scale_growth >= 1:
        raise InputError("max_scale_growth must be >= 1 (0 = no bound)")
    if not 0 < cfg.lr_means_final <= 1:
        raise InputError("lr_means_final must be in (0, 1]")


def native_view_size(cloud: GaussianCloud, panorama: Panorama) -> int:
    """Side of a 90° view whose pixels match the splats' spacing at its centre, pixels.

    A quarter of the panorama width, or of ``sqrt(2 N)`` when the cloud was merged to fewer splats
    than pixels (an H x 2H panorama has 2 H^2 of them), rounded to a multiple of 8 in [64, 384]:
    coarser views cannot show what the splats hold, finer ones only cost time.
    """
    width = min(panorama.width, math.sqrt(2.0 * max(len(cloud), 1)))
    return int(min(384, max(64, 8 * round(width / 32))))


def choose_device(cfg: RefineConfig) -> tuple[str, str]:
    """(rasterizer, reason) for this config: "gsplat" (CUDA) or "cpu"."""
    if cfg.device == "cpu":
        return "cpu", "device=cpu requested"
    name, reason = select_rasterizer()
    if name == "gsplat":
        why = _gsplat_ready()
        if why is not None:
            if cfg.device == "cuda":
                raise BackendUnavailableError(f"device=cuda requested but {why}")
            return "cpu", f"{why}; fell back to the PyTorch rasterizer"
        return "gsplat", reason
    if cfg.device == "cuda":
        raise BackendUnavailableError(f"device=cuda requested but {reason}")
    return "cpu", reason


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def _gauss_window(size: int = 11, sigma: float = 1.5):
    """1D Gaussian SSIM window, normalised. [size] float32"""
    import torch

    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim_map(a, b, window=None):
    """Per-pixel SSIM of two image batches (11x11 Gaussian window, sigma 1.5, reflect padding).

    Args:
        a, b: images in [0, 1]. [C, H, W, 3]

    Returns:
        [C, H, W] SSIM averaged over the colour channels.

    The 2D window is separable: two 11-tap passes over the five moment images stacked as one
    batch (a 121-tap conv2d and its backward dominated a CPU training step).
    """
    import torch
    import torch.nn.functional as F

    g = (_gauss_window() if window is None else window).to(a.dtype).to(a.device)
    k = g.shape[0]
    x = a.permute(0, 3, 1, 2).reshape(-1, 1, a.shape[1], a.shape[2])
    y = b.permute(0, 3, 1, 2).reshape(-1, 1, b.shape[1], b.shape[2])
    pad = k // 2
    xp = F.pad(x, (pad,) * 4, mode="reflect")
    yp = F.pad(y, (pad,) * 4, mode="reflect")
    n = xp.shape[0]
    stack = torch.cat([xp, yp, xp * xp, yp * yp, xp * yp], 0)[:, 0]  # [5n, H + 2 pad, W + 2 pad]
    H, W = a.shape[1], a.shape[2]
    # Each pass is a sum of k shifted slices: on CPU this (and its backward) is several times
    # faster than conv2d, whose backward dominated a training step.
    rows = sum(g[i] * stack[:, :, i : i + W] for i in range(k))
    blur = sum(g[i] * rows[:, i : i + H, :] for i in range(k))
    mx, my, exx, eyy, exy = blur.split(n, 0)
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.reshape(a.shape[0], 3, H, W).mean(1)


# --------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------


def _params(cloud: GaussianCloud, device: str):
    import torch

    t = lambda a: torch.nn.Parameter(torch.tensor(np.asarray(a), device=device))  # noqa: E731
    p = {
        "means": t(cloud.means),
        "quats": t(cloud.quats),
        "scales": t(cloud.log_scales),
        "opacities": t(cloud.opacity_logits),
        "sh0": t(cloud.sh[:, :1]),
    }
    if cloud.sh.shape[1] > 1:
        p["shN"] = t(cloud.sh[:, 1:])
    return torch.nn.ParameterDict(p)


class _Adam:
    """``torch.optim.Adam`` for one CPU parameter, bit for bit (its single-tensor update with betas
    (0.9, 0.999), no weight decay, no amsgrad), with the attributes the loop uses (``param_groups``,
    ``step``, ``zero_grad``).

    Used when no densification strategy runs (gsplat's strategies edit torch optimisers' state):
    the first ``torch.optim`` optimiser of a process imports ``torch._dynamo``, ~1 s of CPU in a
    ~80 s balanced run, for nothing here.
    """

    betas = (0.9, 0.999)

    def __init__(self, param, lr: float, name: str, eps: float):
        self.param_groups = [{"params": [param], "lr": lr, "name": name}]
        self.eps = eps
        self.steps = 0
        self.moments = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.param_groups[0]["params"][0].grad = None

    def step(self) -> None:
        import torch

        group = self.param_groups[0]
        p = group["params"][0]
        if p.grad is None:
            return
        if self.moments is None:
            self.moments = (torch.zeros_like(p), torch.zeros_like(p))
        exp_avg, exp_avg_sq = self.moments
        beta1, beta2 = self.betas
        self.steps += 1
        step = float(self.steps)  # torch keeps it as a float32 tensor and reads .item(): the same value
        with torch.no_grad():
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = group["lr"] / (1 - beta1**step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


def _optimizers(params, cfg: RefineConfig, scene_scale: float, shape_lr_scale: float = 1.0, plain: bool = False):
    """One Adam per parameter group; ``plain``: :class:`_Adam` (CPU, no densification strategy)."""
    import torch

    k = shape_lr_scale
    lrs = {
        "means": cfg.lr_means * scene_scale * k,
        "quats": cfg.lr_quats * k,
        "scales": cfg.lr_scales * k,
        "opacities": cfg.lr_opacities * k,
        "sh0": cfg.lr_sh0,
        "shN": cfg.lr_sh0 * cfg.lr_shn_factor,
    }
    if plain:
        return {k: _Adam(p, lrs[k], k, eps=1e-15) for k, p in params.items()}
    return {k: torch.optim.Adam([{"params": p, "lr": lrs[k], "name": k}], eps=1e-15) for k, p in params.items()}


def _make_strategy(cfg: RefineConfig, iterations: int, rasterizer: str):
    kind = cfg.strategy if rasterizer == "gsplat" else cfg.cpu_strategy
    if kind == "none" or iterations < 50:
        return None
    if kind == "mcmc":
        if rasterizer != "gsplat":
            raise BackendUnavailableError(
                "the mcmc strategy needs gsplat's CUDA kernels (its relocation op has no CPU version); "
                "use strategy='default' on CPU"
            )
        from gsplat.strategy import MCMCStrategy

        return MCMCStrategy(
            cap_max=cfg.max_gaussians,
            refine_start_iter=int(0.1 * iterations),
            refine_stop_iter=int(0.8 * iterations),
            refine_every=max(25, iterations // 30),
        )
    from gsplat.strategy import DefaultStrategy

    # gsplat's schedule (start 500, every 100, reset opacity every 3000) assumes 30k steps; scale
    # it to the run, and never reset opacities: short runs cannot recover from a reset.
    return DefaultStrategy(
        prune_opa=cfg.prune_opacity,
        grow_grad2d=cfg.densify_grad,
        refine_start_iter=int(0.15 * iterations),
        refine_stop_iter=int(0.75 * iterations),
        refine_every=max(25, iterations // 15),
        reset_every=10**9,
        verbose=False,
    )


def _stack_views(views: list[TrainingView], device: str):
    import torch

    viewmats, Ks, w, h = cameras_to_gsplat([v.camera for v in views])
    t = lambda a: torch.tensor(np.asarray(a), device=device)  # noqa: E731
    return {
        "viewmats": t(viewmats),
        "Ks": t(Ks),
        "w": w,
        "h": h,
        "image": t(np.stack([v.image for v in views])),
        "depth": t(np.stack([v.depth for v in views])),
        "cmask": t(np.stack([v.color_mask for v in views])),
        "dmask": t(np.stack([v.depth_mask for v in views])),
        "sky": t(np.stack([v.sky for v in views])),
        "weight": t(np.array([1.0 if v.kind == "capture" else 0.0 for v in views], np.float32)),
    }


def refine_gaussians(
    cloud: GaussianCloud,
    panorama: Panorama,
    depth: DepthMap,
    cfg: RefineConfig,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    backfill: GaussianCloud | None = None,
    frozen: np.ndarray | None = None,
) -> tuple[GaussianCloud, dict[str, Any]]:
    """Optimise ``cloud`` so that its renders match views of the panorama and its depth.

    Args:
        cloud: initial splats (world frame).
        panorama, depth: the capture they came from.
        cfg: hyper-parameters; the CPU path uses ``cpu_iterations`` and ``cpu_view_size``.
        seed: seeds view order and densification sampling.
        progress: called with (fraction, message) every few steps; the message has the live loss.
        backfill: splats hidden behind depth edges (:func:`worldgen.splats.backfill.backfill_gaussians`),
            appended after the optimiser and before the final colour solve. The optimiser never
            sees them: trained with the rest, splats at silhouettes pulled them forward (floaters at
            0.5 m on the village rose from 1.6 % to 1.9 %; appended afterwards they fell to 1.0 %).
            Ignored when there is no refinement (iterations = 0).
        frozen: splats of ``cloud`` whose shapes and opacities the optimiser leaves alone (their
            colours still come from the colour solves), e.g. the backing layer
            (:func:`worldgen.splats.init.backing_gaussians`); ignored when a densification
            strategy runs (it reorders the splats). [N] bool

    Returns:
        (refined cloud, report) where report holds the rasterizer and why, iterations, view size,
        splat counts, the final loss and the PSNR on the training views, and seconds taken.
    """
    import torch

    _check_config(cfg)
    progress = progress or (lambda f, m="": None)
    rasterizer, reason = choose_device(cfg)
    iters = cfg.iterations if rasterizer == "gsplat" else cfg.cpu_iterations
    size = cfg.view_size if rasterizer == "gsplat" else (cfg.cpu_view_size or native_view_size(cloud, panorama))
    report: dict[str, Any] = {
        "rasterizer": rasterizer,
        "rasterizer_reason": reason,
        "iterations": iters,
        "view_size": size,
        "n_gaussians_in": len(cloud),
    }
    if iters == 0 or len(cloud) == 0:
        report.update(n_gaussians_out=len(cloud), seconds=0.0)
        progress(1.0, "no refinement (iterations = 0)")
        return cloud, report
    device = "cuda" if rasterizer == "gsplat" else "cpu"
    t0 = time.perf_counter()
    views = capture_views(panorama, depth, size)
    n_capture = len(views)
    if cfg.warp_baseline > 0 and cfg.warp_positions > 0:
        rng_w = np.random.default_rng([seed, 17])
        v = rng_w.normal(size=(cfg.warp_positions, 3))
        v[:, 1] *= 0.3  # mostly sideways and forwards: the way a viewer moves
        v = v / np.linalg.norm(v, axis=1, keepdims=True) * cfg.warp_baseline
        views += warped_views(panorama, depth, size, v)
    data = _stack_views(views, device)
    data["weight"][n_capture:] = cfg.warp_weight
    finite = depth.depth[~depth.sky]
    scene_scale = float(np.median(finite)) if finite.size else 1.0
    far = float(finite.max()) if finite.size else 1.0
    dome_from = 1.02 * far  # sky-dome splats lie beyond every surface (init puts them at 1.5 x far)
    dist = np.linalg.norm(cloud.means, axis=1)
    # Any dome splat counts: an interior sees the sky only through its windows (well under 2 % of
    # the splats), and treating that as "no sky splats" trained the windows transparent and kept
    # the colour solve off them (the capture point lost ~6 dB through the windows of a room).
    has_sky_splats = bool((dist > dome_from).any()) if depth.sky.any() else True
    report["sky_splats"] = has_sky_splats

    fork_devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch_threads(cfg.cpu_threads if device == "cpu" else None), contextlib.ExitStack() as stack:
        # On CPU every render of the loop is binned and composited in two parts of interleaved
        # tile rows, the second in a helper process when there is a second core
        # (RefineConfig.cpu_workers; the same bytes either way).
        split: dict[str, Any] = {}
        if device == "cpu":
            helpers = helper_count(cfg.cpu_workers)
            split = {
                "tile_parts": _CPU_TILE_PARTS,
                "worker": stack.enter_context(CpuWorker(cfg.cpu_threads)) if helpers else None,
            }
            report["cpu_workers"] = 1 + helpers
        # The colour solves split their views into two groups instead (the helper keeps its
        # group's operators between iterations, so they never cross the pipe); each view's weights
        # are binned in one piece.
        solve_split = {"view_groups": 2, "worker": split["worker"]} if split else {}
        # Both colour solves (before and after the loop) fit the capture views the same way.
        solve = functools.partial(
            solve_colours,
            views=views[:n_capture],
            anchor_weight=cfg.colour_anchor,
            iterations=cfg.colour_iterations,
            include_sky=has_sky_splats,
            device=device,
            **solve_split,
        )
        if cfg.colour_iterations:
            # Colours first (a direct solve reaches in seconds what hundreds of Adam steps do not),
            # so the optimiser spends its steps on shape and opacity; then once more at the end,
            # for the final geometry (docs/splats.md, "Colour solve").
            progress(0.0, "solving colours")
            # The fill enters both solves with its colours fixed: the capture views see it only
            # through the soft rims of silhouettes, where SIRT's per-splat normalisation moved it
            # by the rim's whole residual (white and black ghosts beside every trunk once the
            # viewer stepped aside). Being in both, the never-worse test below compares like with like.
            with_fill, fixed = _with_fill(cloud, backfill)
            # colour_anchor's anchors, for both solves: every splat's colour before refinement.
            anchor = with_fill.sh[:, 0] * SH_C0 + 0.5 if cfg.colour_anchor > 0 else None
            tc = time.perf_counter()
            solved_all, rep = solve(with_fill, fixed=fixed, anchor=anchor)
            cloud = _head(solved_all, len(cloud))
            report["colour_seconds"] = time.perf_counter() - tc
            report["colour_psnr_init"] = rep["psnr_before"]
            solved, solved_psnr = solved_all, rep["psnr_after"]
        # The two colour solves take ~10 % of a CPU run: keep the bar moving forwards through them.
        loop_progress = progress if not cfg.colour_iterations else (lambda f, m="": progress(0.05 + 0.9 * f, m))
        sky_from = dome_from if (has_sky_splats and cfg.freeze_sky and depth.sky.any()) else None
        out, loop = _optimise(
            cloud,
            views,
            data,
            cfg,
            iters,
            rasterizer,
            device,
            scene_scale,
            has_sky_splats,
            sky_from,
            seed,
            fork_devices,
            loop_progress,
            frozen,
            split,
        )
        out, fixed = _with_fill(out, backfill)
        if cfg.colour_iterations:
            progress(0.95, "solving colours for the refined shapes")
            tc = time.perf_counter()
            # A densification strategy cloned, split and pruned the splats, so the anchors before
            # refinement are no longer theirs: then each splat is held to its own refined colour.
            same = anchor is not None and len(out) == len(anchor)
            if cfg.colour_anchor > 0:
                report["colour_anchor_to"] = "before refinement" if same else "refined colours"
            out, rep = solve(out, fixed=fixed, anchor=anchor if same else None)
            report["colour_psnr_final"] = rep["psnr_after"]
            report["colour_seconds"] += time.perf_counter() - tc
            # Never worse than the unrefined splats from the capture point: if the optimiser lost
            # on the capture views, keep the colour-solved initial splats (plus the fill behind edges).
            report["kept_initial_shapes"] = bool(rep["psnr_after"] < solved_psnr)
            if report["kept_initial_shapes"]:
                out = solved
                report["colour_psnr_final"] = solved_psnr
            progress(1.0, f"refined: loss {loop['final_loss']:.4f}, capture views {rep['psnr_after']:.1f} dB")
    report.update(loop)
    if split.get("worker") is not None:
        # The helper's CPU time and how much of it the caller would have waited for alone
        # (CpuWorker's docstring): the caller's CPU time plus this estimates an idle machine's wall.
        report.update(cpu_helper_seconds=split["worker"].helper_cpu, cpu_helper_idle_wait=split["worker"].idle_wait)
    report.update(n_gaussians_backfill=0 if backfill is None else len(backfill))
    report.update(
        n_gaussians_out=len(out),
        scene_scale=scene_scale,
        n_views=len(views),
        n_capture_views=n_capture,
        seconds=time.perf_counter() - t0,
    )
    return out, report


def _with_fill(cloud: GaussianCloud, fill: GaussianCloud | None) -> tuple[GaussianCloud, np.ndarray | None]:
    """``cloud`` with the fill splats appended, and the mask of the fill's splats ([N] bool) or None."""
    if fill is None or not len(fill):
        return cloud, None
    return GaussianCloud.concatenate([cloud, fill]), np.arange(len(cloud) + len(fill)) >= len(cloud)


def _head(cloud: GaussianCloud, n: int) -> GaussianCloud:
    """The first ``n`` splats of ``cloud``."""
    return GaussianCloud(cloud.means[:n], cloud.quats[:n], cloud.log_scales[:n], cloud.opacity_logits[:n], cloud.sh[:n])


def _optimise(
    cloud,
    views,
    data,
    cfg: RefineConfig,
    iters: int,
    rasterizer: str,
    device: str,
    scene_scale: float,
    has_sky_splats: bool,
    sky_from: float | None,
    seed: int,
    fork_devices,
    progress,
    frozen=None,
    split=None,
):
    """The optimisation loop of :func:`refine_gaussians`: (refined cloud, loop report).

    ``split``: the CPU rasterizer's ``tile_parts`` and ``worker`` ({} on gsplat)."""
    import torch

    report: dict[str, Any] = {}
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        params = _params(cloud, device)
        strategy = _make_strategy(cfg, iters, rasterizer)
        plain = strategy is None and device == "cpu"
        opts = _optimizers(params, cfg, scene_scale, cfg.cpu_lr_scale if rasterizer == "cpu" else 1.0, plain)
        report["strategy"] = "none" if strategy is None else type(strategy).__name__.replace("Strategy", "").lower()
        state = strategy.initialize_state(scene_scale=scene_scale) if strategy is not None else None
        # Densification reorders splats, so a frozen mask holds only without it.
        frozen_t = None if frozen is None or strategy is not None else torch.as_tensor(np.asarray(frozen, bool))
        frozen_t = None if frozen_t is None else frozen_t.to(device)
        if not cfg.learn_rotations:
            # Rotations stay as init laid them (RefineConfig.learn_rotations); a densification
            # strategy needs every parameter in its optimisers, so there the rate is only zeroed.
            for g in opts["quats"].param_groups:
                g["lr"] = 0.0
            if strategy is None:
                params["quats"].requires_grad_(False)
        # Upper bound of each splat's log-scales (RefineConfig.max_scale_growth); densification
        # reorders and splits splats, so it holds only without it.
        scale_cap = None
        if cfg.max_scale_growth > 0 and strategy is None:
            scale_cap = params["scales"].detach().clone() + math.log(cfg.max_scale_growth)
        rng = np.random.default_rng([seed, 5])
        order: list[int] = []
        window = _gauss_window().to(device)
        deg = cloud.sh_degree
        loss_ema = None
        skipped = 0
        bad_names: set[str] = set()
        decay = cfg.lr_means_final ** (1.0 / max(iters, 1))
        for step in range(iters):
            if len(order) < cfg.views_per_step:
                order += rng.permutation(len(views)).tolist()
            idx = torch.tensor(order[: cfg.views_per_step], device=device)
            del order[: cfg.views_per_step]
            colors = params["sh0"] if "shN" not in params else torch.cat([params["sh0"], params["shN"]], 1)
            frozen = None
            if sky_from is not None or frozen_t is not None:
                # Splats whose gradients are zeroed below (frozen sky dome, frozen layers), taken
                # before the render: the positions do not change until the update.
                with torch.no_grad():
                    frozen = params["means"].norm(dim=-1) > sky_from if sky_from is not None else frozen_t
                    if frozen_t is not None:
                        frozen = frozen | frozen_t
            # The CPU rasterizer's backward then skips their intersections (about half of a
            # 1024x512 world's are the frozen backing layer's); gsplat's kernels take no mask, and
            # a densification strategy reads every splat's 2D-mean gradient, so it gets none.
            masked = frozen is not None and rasterizer == "cpu" and strategy is None
            extra = {"grad_mask": ~frozen} if masked else {}
            extra.update(split or {})
            render, alpha, meta = rasterize(
                params["means"],
                params["quats"],
                torch.exp(params["scales"]),
                torch.sigmoid(params["opacities"]),
                colors,
                data["viewmats"][idx],
                data["Ks"][idx],
                data["w"],
                data["h"],
                rasterizer=rasterizer,
                sh_degree=deg,
                render_mode="RGB+ED",
                **extra,
            )
            if strategy is not None:
                strategy.step_pre_backward(params, opts, state, step, meta)
            loss = _loss(
                render,
                alpha[..., 0],
                {k: data[k][idx] for k in ("image", "depth", "cmask", "dmask", "sky", "weight")},
                params,
                cfg,
                has_sky_splats,
                window,
            )
            loss.backward()
            if frozen is not None:
                with torch.no_grad():  # frozen splats: zero gradients keep Adam's moments at zero
                    rows = torch.nonzero(frozen).reshape(-1)  # once, not once per parameter
                    for p in params.values():
                        if p.grad is not None:
                            p.grad.index_fill_(0, rows, 0.0)
            bad = [k for k, p in params.items() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
            if bad or not bool(torch.isfinite(loss)):
                # Last resort (the known cause, a cancelling 2D determinant, is fixed in the
                # rasterizer): one non-finite gradient would poison Adam's moments for good.
                skipped += 1
                bad_names.update(bad or ["loss"])
                log.warning("refine step %d: non-finite %s; update skipped", step, ", ".join(bad or ["loss"]))
                for o in opts.values():
                    o.zero_grad(set_to_none=True)
                continue
            for o in opts.values():
                o.step()
                o.zero_grad(set_to_none=True)
            if scale_cap is not None:
                with torch.no_grad():
                    params["scales"].clamp_(max=scale_cap)
            for g in opts["means"].param_groups:
                g["lr"] *= decay
            if strategy is not None:
                if report["strategy"] == "mcmc":
                    strategy.step_post_backward(params, opts, state, step, meta, lr=opts["means"].param_groups[0]["lr"])
                else:
                    if len(params["means"]) < cfg.max_gaussians or step >= strategy.refine_stop_iter:
                        strategy.step_post_backward(params, opts, state, step, meta, packed=meta["packed"])
                    else:
                        strategy.step_post_backward(
                            params, opts, state, strategy.refine_stop_iter, meta, packed=meta["packed"]
                        )
            lv = float(loss.detach())
            loss_ema = lv if loss_ema is None else 0.9 * loss_ema + 0.1 * lv
            if step % 10 == 0 or step == iters - 1:
                progress(
                    (step + 1) / iters, f"refine {step + 1}/{iters} loss {loss_ema:.4f} splats {len(params['means'])}"
                )
        out = _to_cloud(params)
    report.update(final_loss=loss_ema, skipped_steps=skipped, nonfinite=sorted(bad_names))
    return out, report


def _loss(render, alpha, tgt, params, cfg: RefineConfig, has_sky_splats: bool, window):
    import torch

    rgb, zed = render[..., :3], render[..., 3]
    cmask = tgt["cmask"] & (~tgt["sky"] if not has_sky_splats else torch.ones_like(tgt["cmask"]))
    wts = tgt["weight"][:, None, None] * cmask
    denom = wts.sum().clamp_min(1.0)
    l1 = ((rgb - tgt["image"]).abs().mean(-1) * wts).sum() / denom
    # Unsupervised pixels take the target's value so they do not disturb SSIM's windows.
    filled = torch.where(cmask[..., None], rgb, tgt["image"])
    dssim = ((1 - ssim_map(filled, tgt["image"], window)) * wts).sum() / denom
    loss = (1 - cfg.lambda_dssim) * l1 + cfg.lambda_dssim * dssim
    if cfg.lambda_depth > 0:
        dm = tgt["dmask"] & (alpha > 0.5)
        if bool(dm.any()):
            dw = tgt["weight"][:, None, None] * dm
            dl = (torch.log(zed.clamp_min(1e-3)) - torch.log(tgt["depth"].clamp_min(1e-3))).abs()
            loss = loss + cfg.lambda_depth * (dl * dw).sum() / dw.sum().clamp_min(1.0)
    if not has_sky_splats and cfg.lambda_sky > 0 and bool(tgt["sky"].any()):
        loss = loss + cfg.lambda_sky * alpha[tgt["sky"]].mean()
    if cfg.lambda_opacity > 0:
        loss = loss + cfg.lambda_opacity * torch.sigmoid(params["opacities"]).mean()
    if cfg.lambda_scale > 0:
        s = torch.exp(params["scales"])
        d = params["means"].detach().norm(dim=-1).clamp_min(0.1)
        loss = loss + cfg.lambda_scale * (s.max(-1).values / d).mean()
        # Needles only: largest over middle scale. Flat discs (a thin normal axis, as
        # init_gaussians makes them, ratio >= 10 to the smallest) are the right shape for surfaces;
        # penalising largest / smallest fattened every disc and dominated the loss.
        # The hinge is zero (and so is its gradient) on almost every splat: find the few above it
        # with exact min/max selections (the same largest and middle values a sort gives), and
        # sort and differentiate only those, over the same count (a sort of every splat's three
        # scales and its backward cost ~25 ms of a ~0.6 s CPU step).
        with torch.no_grad():
            a, b, c = s.unbind(-1)
            hi = torch.maximum(torch.maximum(a, b), c)
            mid = torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
            over = torch.nonzero(hi / mid.clamp_min(1e-8) > cfg.max_anisotropy).reshape(-1)
        if over.numel():
            srt = s.index_select(0, over).sort(-1).values
            ratio = srt[:, 2] / srt[:, 1].clamp_min(1e-8)
            loss = loss + cfg.lambda_scale * (torch.relu(ratio - cfg.max_anisotropy).sum() / s.shape[0])
    return loss


def _to_cloud(params) -> GaussianCloud:
    import torch

    with torch.no_grad():
        sh = params["sh0"] if "shN" not in params else torch.cat([params["sh0"], params["shN"]], 1)
        arr = {k: v.detach().cpu().numpy() for k, v in params.items()}
        q = arr["quats"]
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        keep = np.isfinite(arr["means"]).all(1) & np.isfinite(arr["scales"]).all(1) & np.isfinite(q).all(1)
        return GaussianCloud(
            arr["means"][keep], q[keep], arr["scales"][keep], arr["opacities"][keep], sh.detach().cpu().numpy()[keep]
        )


def evaluate(cloud: GaussianCloud, views: list[TrainingView], rasterizer: str | None = None) -> dict[str, float]:
    """Mean PSNR (dB) of ``cloud``'s renders against ``views`` over their colour masks."""
    from .rasterize import render_cloud

    vals = []
    for v in views:
        r = render_cloud(cloud, [v.camera], rasterizer=rasterizer)["rgb"][0]
        vals.append(psnr(r, v.image, v.color_mask))
    return {"psnr": float(np.mean(vals)), "psnr_min": float(np.min(vals))}


def with_preset(preset: str, **overrides: Any) -> RefineConfig:
    """RefineConfig for ``preset`` ("fast", "balanced", "quality") plus field overrides."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    return replace(RefineConfig(**PRESETS[preset]), **overrides)
