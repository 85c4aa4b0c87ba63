"""Refinement: it improves held-out views, is deterministic on CPU, and runs through the registry."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from worldgen.errors import BackendUnavailableError, InputError
from worldgen.geometry import equirect_directions
from worldgen.registry import Request, StageContext, get_backend
from worldgen.splats.refine import RefineConfig, evaluate, psnr, refine_gaussians, ssim_map, with_preset
from worldgen.splats.views import capture_views
from worldgen.types import DepthMap, GaussianCloud, Panorama


def _world(h: int):
    d = equirect_directions(h).astype(np.float64)
    lo, hi = np.array([-3.0, -1.6, -4.0]), np.array([3.0, 1.4, 3.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0, hi / d, lo / d)
    t = np.where(np.isfinite(t) & (t > 0), t, np.inf).min(-1)
    p = d * t[..., None]
    col = np.clip(0.5 + 0.25 * np.sin(p * np.array([2.1, 3.3, 1.7])) + 0.15 * np.cos(4 * p[..., [2, 0, 1]]), 0, 1)
    return Panorama(col.astype(np.float32)), DepthMap(t.astype(np.float32), np.zeros(t.shape, bool))


def _cloud(pano, depth):
    """One isotropic splat per pixel (a deliberately plain start, independent of init.py)."""
    h = depth.shape[0]
    d = equirect_directions(h).reshape(-1, 3)
    t = depth.depth.reshape(-1)
    s = np.repeat((t * math.pi / h * 0.6)[:, None], 3, 1)
    return GaussianCloud.from_activated(
        d * t[:, None], np.tile([1.0, 0, 0, 0], (len(t), 1)), s, np.full(len(t), 0.9), colors=pano.image.reshape(-1, 3)
    )


@pytest.fixture(scope="module")
def world():
    pano, depth = _world(48)
    return pano, depth, _cloud(pano, depth)


_CFG = RefineConfig(cpu_iterations=60, cpu_view_size=40, warp_baseline=0.1, warp_positions=1)


def test_refinement_improves_held_out_views_and_is_deterministic(world):
    pano, depth, cloud = world
    held = capture_views(pano, depth, 40, directions=[(20.0, 10.0), (200.0, -30.0), (110.0, 35.0)])
    before = evaluate(cloud, held, "cpu")["psnr"]
    msgs = []
    out, rep = refine_gaussians(cloud, pano, depth, _CFG, seed=3, progress=lambda f, m: msgs.append((f, m)))
    after = evaluate(out, held, "cpu")["psnr"]
    assert after > before + 1.0, (before, after)
    assert rep["rasterizer"] == "cpu" and rep["iterations"] == 60 and rep["n_gaussians_out"] == len(out)
    assert msgs[-1][0] == 1.0 and "loss" in msgs[-1][1]
    assert rep["skipped_steps"] == 0 and rep["nonfinite"] == []
    # The colour solves ran before and after the optimiser and the capture views ended sharper.
    assert rep["colour_psnr_final"] > rep["colour_psnr_init"] + 3, rep
    import torch

    threads = torch.get_num_threads()
    out2, _ = refine_gaussians(cloud, pano, depth, _CFG, seed=3)
    assert torch.get_num_threads() == threads  # cpu_threads applies inside the run only
    for a, b in ((out.means, out2.means), (out.sh, out2.sh), (out.log_scales, out2.log_scales)):
        assert np.array_equal(a, b)


def test_colour_solve_can_be_turned_off(world):
    pano, depth, cloud = world
    _, rep = refine_gaussians(cloud, pano, depth, RefineConfig(cpu_iterations=2, cpu_view_size=24, colour_iterations=0))
    assert "colour_psnr_init" not in rep and "colour_psnr_final" not in rep
    with pytest.raises(InputError, match="colour_iterations"):
        refine_gaussians(cloud, pano, depth, RefineConfig(colour_iterations=-1))


def test_colour_anchor_holds_the_colours_before_refinement(world):
    from worldgen.types import SH_C0

    pano, depth, cloud = world
    cfg = dict(cpu_iterations=2, cpu_view_size=24, colour_iterations=3)
    col = lambda c: np.clip(0.5 + SH_C0 * c.sh[: len(cloud), 0], 0, 1)  # noqa: E731
    free, _ = refine_gaussians(cloud, pano, depth, RefineConfig(**cfg))
    held, _ = refine_gaussians(cloud, pano, depth, RefineConfig(colour_anchor=1000.0, **cfg))
    moved_free = np.abs(col(free) - col(cloud)).max()
    moved_held = np.abs(col(held) - col(cloud)).max()
    assert moved_free > 0.05 and moved_held < 0.01 * moved_free, (moved_free, moved_held)
    with pytest.raises(InputError, match="colour_anchor"):
        RefineConfig(colour_anchor=-0.1)
    # With densification the splats are no longer the ones the anchors belong to: the final solve
    # holds each to its refined colour (it stopped with a shape error at the end of the run)
    grown, rep = refine_gaussians(
        cloud,
        pano,
        depth,
        RefineConfig(
            cpu_iterations=60,
            cpu_view_size=24,
            colour_iterations=2,
            cpu_strategy="default",
            densify_grad=1e-9,
            colour_anchor=0.2,
        ),
    )
    assert len(grown) != len(cloud) and rep["colour_anchor_to"] == "refined colours", rep


def test_native_view_size_follows_the_splats(world):
    pano, _, cloud = world
    from worldgen.splats.refine import native_view_size

    assert native_view_size(cloud, pano) == 64  # 96 px wide: clamped up to 64
    big = Panorama(np.zeros((512, 1024, 3), np.float32))
    n = 512 * 1024
    many = GaussianCloud.from_activated(
        np.zeros((n, 3), np.float32),
        np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
        np.full((n, 3), 0.1, np.float32),
        np.full(n, 0.5, np.float32),
        colors=np.zeros((n, 3), np.float32),
    )
    assert native_view_size(many, big) == 256  # a quarter of the width
    quarter = many.subset(np.arange(n // 4))  # merged to a quarter: half the width
    assert native_view_size(quarter, big) == 128


def test_sky_dome_is_left_to_the_colour_solve(world):
    from worldgen.splats.init import init_gaussians

    pano, depth, _ = world
    up = equirect_directions(depth.shape[0])[..., 1] > 0.7
    sky_depth = DepthMap(np.where(up, np.inf, depth.depth).astype(np.float32), up)
    cloud = init_gaussians(pano, sky_depth)
    dome = np.linalg.norm(cloud.means, axis=1) > 1.02 * float(depth.depth[~up].max())
    assert dome.sum() == up.sum()
    cfg = RefineConfig(cpu_iterations=20, cpu_view_size=32)
    out, rep = refine_gaussians(cloud, pano, sky_depth, cfg)
    assert rep["sky_splats"]
    for a, b in (
        (out.means, cloud.means),
        (out.log_scales, cloud.log_scales),
        (out.opacity_logits, cloud.opacity_logits),
    ):
        assert np.allclose(a[dome], b[dome], atol=1e-6) and not np.allclose(a[~dome], b[~dome], atol=1e-6)
    assert np.allclose(out.quats, cloud.quats, atol=1e-6)  # rotations are not learnt by default
    assert not np.array_equal(out.sh[dome], cloud.sh[dome])  # the colour solve still recolours the sky
    free, _ = refine_gaussians(
        cloud, pano, sky_depth, RefineConfig(cpu_iterations=20, cpu_view_size=32, freeze_sky=False)
    )
    assert not np.allclose(free.means[dome], cloud.means[dome], atol=1e-6)


def test_fast_preset_is_identity(world):
    pano, depth, cloud = world
    out, rep = refine_gaussians(cloud, pano, depth, with_preset("fast"))
    assert out is cloud and rep["iterations"] == 0


def test_default_strategy_runs_on_cpu(world):
    pano, depth, cloud = world
    cfg = RefineConfig(
        cpu_iterations=60, cpu_view_size=32, warp_baseline=0.0, cpu_strategy="default", densify_grad=1e-6
    )
    out, rep = refine_gaussians(cloud, pano, depth, cfg)
    assert rep["strategy"] == "default" and len(out) != len(cloud)


def test_config_errors(world):
    pano, depth, cloud = world
    with pytest.raises(InputError, match="device"):
        refine_gaussians(cloud, pano, depth, RefineConfig(device="tpu"))
    with pytest.raises(InputError, match="cpu_strategy"):
        refine_gaussians(cloud, pano, depth, RefineConfig(cpu_strategy="mcmc"))
    with pytest.raises(InputError, match="preset"):
        with_preset("ultra")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="device=cuda"):
            refine_gaussians(cloud, pano, depth, RefineConfig(device="cuda"))


def test_ssim_matches_2d_convolution():
    # The separable shifted-slice blur equals the textbook 11x11 Gaussian conv2d with reflect padding.
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(4)
    a = torch.rand(2, 24, 20, 3, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.rand(2, 24, 20, 3, generator=g, dtype=torch.float64)).clamp(0, 1)
    x = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-x * x / 4.5)
    w = (w1[:, None] * w1[None] / w1.sum() ** 2)[None, None]
    X, Y = (F.pad(t.permute(0, 3, 1, 2).reshape(-1, 1, 24, 20), (5,) * 4, mode="reflect") for t in (a, b))
    mx, my = F.conv2d(X, w), F.conv2d(Y, w)
    sxx, syy, sxy = F.conv2d(X * X, w) - mx * mx, F.conv2d(Y * Y, w) - my * my, F.conv2d(X * Y, w) - mx * my
    ref = ((2 * mx * my + 1e-4) * (2 * sxy + 9e-4)) / ((mx * mx + my * my + 1e-4) * (sxx + syy + 9e-4))
    torch.testing.assert_close(ssim_map(a, b), ref.reshape(2, 3, 24, 20).mean(1), atol=1e-7, rtol=0)


def test_needle_penalty_spares_flat_discs():
    import torch

    from worldgen.splats.refine import _loss

    cfg = RefineConfig(lambda_dssim=0.0, lambda_depth=0.0, lambda_sky=0.0)
    img = torch.zeros(1, 12, 12, 3)
    tgt = {
        "image": img,
        "depth": torch.zeros(1, 12, 12),
        "cmask": torch.ones(1, 12, 12, dtype=torch.bool),
        "dmask": torch.zeros(1, 12, 12, dtype=torch.bool),
        "sky": torch.zeros(1, 12, 12, dtype=torch.bool),
        "weight": torch.ones(1),
    }
    render = torch.zeros(1, 12, 12, 4)

    def reg(scales):
        p = {
            "means": torch.tensor([[0.0, 0.0, -2.0]]),
            "scales": torch.log(torch.tensor([scales])),
            "opacities": torch.zeros(1),
        }
        return float(_loss(render, torch.zeros(1, 12, 12), tgt, p, cfg, True, None))

    disc, needle = reg([0.1, 0.1, 0.001]), reg([0.1, 0.005, 0.005])
    assert disc == pytest.approx(0.01 * 0.1 / 2.0)  # only the size term: thin discs are free
    assert needle > disc + 0.01 * 5


def test_ssim_and_psnr():
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 16, 16, 3, generator=g)
    assert torch.allclose(ssim_map(a, a), torch.ones(2, 16, 16), atol=1e-5)
    assert ssim_map(a, torch.rand(2, 16, 16, 3, generator=g)).mean() < 0.2
    x = np.zeros((4, 4, 3))
    assert psnr(x, x + 0.1) == pytest.approx(20.0)


def test_backend_through_registry(world):
    pano, depth, _ = world
    b = get_backend("gaussians", "refine")
    assert b.make_config("fast").iterations == 0
    cfg = b.make_config("balanced", {"cpu_iterations": 5, "cpu_view_size": 24, "warp_baseline": 0.0})
    msgs = []
    ctx = StageContext(
        "gaussians", {"panorama": pano, "depth": depth}, Request(seed=1), cfg, lambda f, m="": msgs.append(m)
    )
    res = b.run(ctx)
    cloud = res.artifacts["gaussians"]
    assert isinstance(cloud, GaussianCloud)
    extra = res.report["n_gaussians_backfill"] + res.report["n_gaussians_backing"]
    assert res.report["n_gaussians_backing"] > 0 and len(cloud) == depth.valid.sum() + extra
    assert res.report["iterations"] == 5 and any("loss" in m for m in msgs)


def test_backend_caps_splats_on_cpu_only_when_refining(world):
    pano, depth, _ = world
    b = get_backend("gaussians", "refine")
    n_pixels = int(depth.valid.sum())
    budget = n_pixels // 4

    def run(preset, **over):
        cfg = b.make_config(preset, {"cpu_view_size": 24, "warp_baseline": 0.0, "cpu_iterations": 2, **over})
        ctx = StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(seed=1), cfg)
        return b.run(ctx)

    capped = run("balanced", cpu_max_splats=budget, device="cpu")
    assert len(capped.artifacts["gaussians"]) <= budget and capped.report["init_splat_budget"] == budget
    # An explicit --max-splats wins; 0 disables the CPU cap; no refinement means no cap.
    assert (
        run("balanced", cpu_max_splats=budget, max_splats=budget * 2, device="cpu").report["init_splat_budget"]
        == budget * 2
    )
    full = run("balanced", cpu_max_splats=0, device="cpu")
    assert len(full.artifacts["gaussians"]) == n_pixels + _fill_and_backing(full.report)
    fast = run("fast", cpu_max_splats=budget, cpu_iterations=0, device="cpu")
    assert len(fast.artifacts["gaussians"]) == n_pixels + _fill_and_backing(fast.report)


def _fill_and_backing(report) -> int:
    return report["n_gaussians_backfill"] + report["n_gaussians_backing"]


def test_fast_preset_keeps_the_hidden_layer_splats(world):
    """Unrefined output walks too: the hidden-layer splats are appended even without refinement."""
    from worldgen.splats.backfill import layer_gaussians

    pano, depth, _ = world
    b = get_backend("gaussians", "refine")

    def run(**over):
        cfg = b.make_config("fast", {"device": "cpu", **over})
        return b.run(StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(seed=1), cfg))

    lg = layer_gaussians(pano, depth, 2.0, seed=1)
    assert len(lg) > 0
    res = run()
    out = res.artifacts["gaussians"]
    assert res.report["n_gaussians_backfill"] == len(lg)
    assert len(out) == depth.valid.sum() + len(lg) + res.report["n_gaussians_backing"]
    assert np.array_equal(out.means[-len(lg) :], lg.means)
    # No layer, no band backfill (and no backing layer).
    assert len(run(walk_radius=0.0, backing_factor=0).artifacts["gaussians"]) == depth.valid.sum()


def test_backend_adds_hidden_layer_splats_within_the_budget(world):
    from worldgen.splats.backfill import backfill_gaussians, layer_gaussians

    pano, depth, _ = world
    b = get_backend("gaussians", "refine")

    def run(**over):
        cfg = b.make_config(
            "balanced", {"cpu_view_size": 24, "cpu_iterations": 1, "colour_iterations": 1, "device": "cpu", **over}
        )
        return b.run(StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(seed=1), cfg))

    n_pixels = depth.shape[0] * depth.shape[1]
    extra = len(layer_gaussians(pano, depth, 2.0, seed=1))
    assert extra > 0
    res = run(cpu_max_splats=0)
    out = res.artifacts["gaussians"]
    assert res.report["n_gaussians_backfill"] == extra and len(out) == n_pixels + _fill_and_backing(res.report)
    # Appended after the optimiser: their shapes are exactly as built (with the pixel splats' footprint).
    from worldgen.splats.init import InitConfig
    from worldgen.splats.refine_backend import RefineStageConfig

    lg = layer_gaussians(pano, depth, 2.0, seed=1, config=InitConfig(footprint_sigma=RefineStageConfig.init_footprint))
    assert np.array_equal(out.means[-extra:], lg.means) and np.array_equal(out.log_scales[-extra:], lg.log_scales)
    # ... and so are their inpainted colours: the colour solves, which see them only through the
    # soft rims of silhouettes, must not push them to white or black (ghosts beside every trunk).
    assert np.array_equal(out.sh[-extra:], lg.sh)
    capped = run(max_splats=2000)
    assert len(capped.artifacts["gaussians"]) <= 2000 and capped.report["n_gaussians_backfill"] > 0
    # walk_radius 0 falls back to the old band backfill; both 0 = no fill.
    old = run(walk_radius=0.0, cpu_max_splats=0)
    assert old.report["n_gaussians_backfill"] == len(backfill_gaussians(pano, depth, 8.0))
    assert run(walk_radius=0.0, backfill_deg=0.0, cpu_max_splats=0).report["n_gaussians_backfill"] == 0
    with pytest.raises(InputError, match="backfill_deg"):
        run(backfill_deg=-1.0)
    with pytest.raises(InputError, match="walk_radius"):
        run(walk_radius=-1.0)


def test_refinement_never_ends_worse_on_the_capture_views(world):
    pano, depth, cloud = world
    # An optimiser run wild (huge position and scale steps) loses on the capture views: the
    # colour-solved initial splats are kept instead.
    wild = RefineConfig(cpu_iterations=5, cpu_view_size=24, colour_iterations=2, lr_means=1.0, lr_scales=1.0)
    out, rep = refine_gaussians(cloud, pano, depth, wild, seed=0)
    assert rep["kept_initial_shapes"] is True
    assert np.array_equal(out.means, cloud.means) and np.array_equal(out.log_scales, cloud.log_scales)
    assert rep["colour_psnr_final"] >= rep["colour_psnr_init"]
    _, ok = refine_gaussians(cloud, pano, depth, RefineConfig(cpu_iterations=5, cpu_view_size=24, colour_iterations=2))
    assert ok["kept_initial_shapes"] is False


def test_cpu_lr_scale_is_checked(world):
    pano, depth, cloud = world
    with pytest.raises(InputError, match="cpu_lr_scale"):
        refine_gaussians(cloud, pano, depth, RefineConfig(cpu_lr_scale=0.0))


def test_sky_seen_only_through_windows_counts_as_sky_splats():
    # An interior whose sky shows only through one small window (~1 % of the pixels, under the
    # 2 % that used to be required): its dome splats are sky splats, supervised by the colour
    # solve, and the window is not trained transparent.
    from worldgen.splats.init import init_gaussians

    h = 32
    d = np.full((h, 2 * h), 3.0, np.float32)
    d[12:15, 30:37] = np.inf
    depth = DepthMap.from_array(d)
    img = np.full((h, 2 * h, 3), 0.6, np.float32)
    img[12:15, 30:37] = (0.3, 0.5, 0.9)
    pano = Panorama(img)
    cloud = init_gaussians(pano, depth)
    assert 0 < depth.sky.mean() < 0.02
    _, rep = refine_gaussians(cloud, pano, depth, RefineConfig(cpu_iterations=2, cpu_view_size=24, colour_iterations=2))
    assert rep["sky_splats"] is True


def test_rotations_stay_and_scales_grow_at_most_the_bound(world):
    """By default the optimiser keeps init's rotations and bounds each scale's growth; both can be lifted."""
    pano, depth, cloud = world
    cfg = RefineConfig(cpu_iterations=20, cpu_view_size=32, colour_iterations=0, cpu_lr_scale=3.0)
    out, _ = refine_gaussians(cloud, pano, depth, cfg)
    assert np.allclose(out.quats, cloud.quats, atol=1e-6)
    growth = out.log_scales - cloud.log_scales
    assert growth.max() <= math.log(1.1) + 1e-5 and growth.min() < -1e-3
    free, _ = refine_gaussians(
        cloud, pano, depth, RefineConfig(**{**cfg.__dict__, "learn_rotations": True, "max_scale_growth": 0})
    )
    assert not np.allclose(free.quats, cloud.quats, atol=1e-4)
    assert (free.log_scales - cloud.log_scales).max() > math.log(1.1) + 1e-3
    with pytest.raises(InputError, match="max_scale_growth"):
        RefineConfig(max_scale_growth=0.5)


def test_plain_adam_is_torch_adam_bit_for_bit():
    # The loop's plain Adam (no densification strategy on CPU) must take exactly torch.optim.Adam's
    # steps, learning-rate changes between steps and zero-gradient rows included.
    import torch

    from worldgen.splats.refine import _Adam

    g = torch.Generator().manual_seed(7)
    start = torch.randn(300, 3, generator=g)
    grads = [torch.randn(300, 3, generator=g) * (i + 1) for i in range(6)]
    for gr in grads[::2]:
        gr[:100] = 0.0
    out = []
    for make in (lambda p: torch.optim.Adam([p], lr=0.01, eps=1e-15), lambda p: _Adam(p, 0.01, "x", eps=1e-15)):
        p = torch.nn.Parameter(start.clone())
        opt = make(p)
        for gr in grads:
            p.grad = gr.clone()
            opt.step()
            opt.zero_grad(set_to_none=True)
            for grp in opt.param_groups:
                grp["lr"] *= 0.9
        out.append(p.detach())
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], start)


def test_helper_process_gives_the_same_bytes(world):
    # cpu_workers=2 bins half of every render's tile rows and holds half of the colour solves'
    # views in a helper process; the work is split the same way with one process, so the refined
    # cloud must be the same bytes either way (here both on this machine, helper or not).
    pano, depth, cloud = world
    cfg = RefineConfig(cpu_iterations=12, cpu_view_size=40, colour_iterations=3)
    out1, rep1 = refine_gaussians(cloud, pano, depth, replace(cfg, cpu_workers=1), seed=2)
    out2, rep2 = refine_gaussians(cloud, pano, depth, replace(cfg, cpu_workers=2), seed=2)
    assert rep1["cpu_workers"] == 1 and "cpu_helper_seconds" not in rep1
    if rep2["cpu_workers"] == 2:  # a machine with one core runs no helper
        assert rep2["cpu_helper_seconds"] > 0
    for a, b in zip(
        (out1.means, out1.quats, out1.log_scales, out1.opacity_logits, out1.sh),
        (out2.means, out2.quats, out2.log_scales, out2.opacity_logits, out2.sh),
    ):
        assert np.array_equal(a, b)
    with pytest.raises(InputError, match="cpu_workers"):
        RefineConfig(cpu_workers=0)
