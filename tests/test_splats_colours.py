"""The direct colour solve: exact weights, recovery of known colours, and its guarantees."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.evaluation.views import psnr
from worldgen.splats.colours import solve_colours
from worldgen.splats.rasterize import cameras_to_gsplat, composite_weights, rasterize_cpu, render_cloud
from worldgen.splats.views import TrainingView, view_camera
from worldgen.types import SH_C0, GaussianCloud


def _scene(n: int = 1500, seed: int = 0, colors=None, sh_degree: int = 0) -> GaussianCloud:
    """Splats on a wall 3 m ahead and a floor, overlapping like a real cloud (several per pixel)."""
    rng = np.random.default_rng(seed)
    wall = np.stack([rng.uniform(-3, 3, n), rng.uniform(-1.5, 1.5, n), np.full(n, -3.0) + rng.normal(0, 0.02, n)], 1)
    floor = np.stack([rng.uniform(-3, 3, n), np.full(n, -1.5), rng.uniform(-3, 0, n)], 1)
    means = np.concatenate([wall, floor]).astype(np.float32)
    m = len(means)
    q = rng.normal(size=(m, 4)).astype(np.float32)
    scales = rng.uniform(0.04, 0.12, (m, 3)).astype(np.float32)
    cols = rng.uniform(0.1, 0.9, (m, 3)).astype(np.float32) if colors is None else colors
    sh = np.zeros((m, (sh_degree + 1) ** 2, 3), np.float32)
    sh[:, 0] = (cols - 0.5) / SH_C0
    if sh_degree:
        sh[:, 1:] = rng.normal(0, 0.05, sh[:, 1:].shape)
    return GaussianCloud.from_activated(
        means, q / np.linalg.norm(q, axis=1, keepdims=True), scales, rng.uniform(0.5, 0.95, m).astype(np.float32), sh=sh
    )


def _views(cloud: GaussianCloud, dirs=((0.0, -10.0), (25.0, -20.0), (-30.0, -5.0)), size: int = 48):
    """Training views whose targets are renders of ``cloud`` itself (black background)."""
    out = []
    for yaw, pitch in dirs:
        cam = view_camera(yaw, pitch, size)
        r = render_cloud(cloud, [cam], rasterizer="cpu")
        img = r["rgb"][0]
        z = np.zeros(img.shape[:2], np.float32)
        ones = np.ones(img.shape[:2], bool)
        out.append(TrainingView(cam, img, z, ones, ~ones, ~ones))
    return out


def test_weights_reproduce_the_render():
    import torch

    cloud = _scene()
    vm, K, w, h = cameras_to_gsplat([view_camera(10.0, -10.0, 40), view_camera(-40.0, -30.0, 40)])
    args = [torch.tensor(np.asarray(a)) for a in (cloud.means, cloud.quats, cloud.scales, cloud.opacities)]
    cols = torch.rand(len(cloud), 3, generator=torch.Generator().manual_seed(1))
    img, alpha, _ = rasterize_cpu(*args, cols, torch.tensor(vm), torch.tensor(K), w, h)
    pix, gid, wt = composite_weights(*args, torch.tensor(vm), torch.tensor(K), w, h)
    mine = torch.zeros(2 * w * h, 3).index_add_(0, pix, wt[:, None] * cols[gid])
    assert torch.allclose(mine.reshape(img.shape), img, atol=1e-5)
    assert torch.allclose(torch.zeros(2 * w * h).index_add_(0, pix, wt).reshape(alpha.shape), alpha, atol=1e-5)


def test_recovers_known_colours():
    truth = _scene()
    views = _views(truth)
    grey = _scene(colors=np.full((len(truth), 3), 0.5, np.float32))
    out, rep = solve_colours(grey, views, iterations=30)
    assert rep["psnr_after"] > rep["psnr_before"] + 12 and rep["psnr_after"] > 35, rep
    assert np.array_equal(out.means, grey.means) and np.array_equal(out.log_scales, grey.log_scales)
    # A view between the training ones improves as well: the colours are right, not just fitted.
    held = _views(truth, dirs=((12.0, -15.0),))[0]
    r0 = render_cloud(grey, [held.camera], rasterizer="cpu")["rgb"][0]
    r1 = render_cloud(out, [held.camera], rasterizer="cpu")["rgb"][0]
    assert psnr(r1, held.image) > psnr(r0, held.image) + 10


def test_exact_colours_are_a_fixed_point_and_the_solve_is_deterministic():
    truth = _scene(seed=2)
    views = _views(truth)
    out, rep = solve_colours(truth, views, iterations=3)
    np.testing.assert_allclose(out.sh, truth.sh, atol=2e-4)
    grey = _scene(seed=2, colors=np.full((len(truth), 3), 0.5, np.float32))
    a, _ = solve_colours(grey, views, iterations=4)
    b, rep_b = solve_colours(grey, views, iterations=4, max_cached=0)  # recomputed weights
    assert not rep_b["cached"]
    assert a.sh.tobytes() == b.sh.tobytes()


def test_keeps_higher_sh_bands():
    truth = _scene(seed=4, sh_degree=1)
    views = _views(truth)
    start = GaussianCloud(
        truth.means,
        truth.quats,
        truth.log_scales,
        truth.opacity_logits,
        np.concatenate([np.zeros_like(truth.sh[:, :1]), truth.sh[:, 1:]], 1),
    )
    out, rep = solve_colours(start, views, iterations=30)
    assert np.array_equal(out.sh[:, 1:], truth.sh[:, 1:])
    assert rep["psnr_after"] > 40, rep


def test_sky_pixels_can_be_left_out():
    truth = _scene(seed=5)
    views = _views(truth)
    sky = [
        TrainingView(v.camera, np.ones_like(v.image), v.depth, v.color_mask, v.depth_mask, np.ones_like(v.sky))
        for v in views
    ]
    # Every pixel is "sky" and white: left out, nothing may change.
    out, _ = solve_colours(truth, sky, iterations=2, include_sky=False)
    assert np.array_equal(out.sh, truth.sh)


def test_bad_arguments():
    cloud = _scene(n=50)
    views = _views(cloud, size=16)
    with pytest.raises(InputError, match="iterations"):
        solve_colours(cloud, views, iterations=-1)
    with pytest.raises(InputError, match="relaxation"):
        solve_colours(cloud, views, relaxation=2.0)
    assert solve_colours(cloud, views, iterations=0)[0] is cloud


def test_views_of_different_sizes_are_solved_together():
    truth = _scene(seed=5)
    views = _views(truth, size=48) + _views(truth, dirs=((10.0, -12.0),), size=32)
    grey = _scene(seed=5, colors=np.full((len(truth), 3), 0.5, np.float32))
    out, rep = solve_colours(grey, views, iterations=20)
    assert rep["psnr_after"] > rep["psnr_before"] + 10, rep
    small = render_cloud(out, [views[-1].camera], rasterizer="cpu")["rgb"][0]
    assert psnr(small, views[-1].image) > 30


def test_fixed_splats_keep_their_colours_and_still_render():
    truth = _scene(seed=6)
    views = _views(truth)
    grey = _scene(seed=6, colors=np.full((len(truth), 3), 0.5, np.float32))
    fixed = np.zeros(len(grey), bool)
    fixed[::3] = True
    out, rep = solve_colours(grey, views, iterations=10, fixed=fixed)
    assert np.array_equal(out.sh[fixed], grey.sh[fixed])
    assert not np.array_equal(out.sh[~fixed], grey.sh[~fixed])
    free, _ = solve_colours(grey, views, iterations=10)
    assert not np.array_equal(free.sh[fixed], grey.sh[fixed])  # without the mask they would move


def test_pixel_order_is_the_stable_sort_of_runs():
    # The solve's pixels x splats operator takes its row order from the runs composite_weights
    # returns (one contiguous run per pixel) instead of sorting the long list: it must be the
    # stable argsort, also when an id comes back in a later run and for one-element runs.
    import torch

    from worldgen.splats.colours import _pixel_order

    g = torch.Generator().manual_seed(4)
    ids = torch.randperm(50, generator=g)[:40]
    ids = torch.cat([ids, ids[:5]]).int()  # five ids with two runs each
    pix = torch.repeat_interleave(ids, torch.randint(1, 6, (ids.numel(),), generator=g))
    assert torch.equal(_pixel_order(pix), torch.argsort(pix, stable=True))
    assert _pixel_order(pix[:0]).numel() == 0


@pytest.mark.parametrize("sh_degree", [0, 2])
def test_view_groups_in_a_helper_process_give_the_same_bytes(sh_degree):
    # Refinement splits a solve's views into two groups, the second held and summed over by a
    # helper process: the colours must be the same bytes with the helper as without it, and
    # agree with the one-group solve to float32 rounding (the groups' sums are added in another
    # order). SH bands (a per-view offset computed in the group's process) included.
    from worldgen.splats.workers import CpuWorker

    target = _scene(seed=4, sh_degree=sh_degree)
    views = _views(target, dirs=((0.0, -10.0), (25.0, -20.0), (-30.0, -5.0), (10.0, 5.0), (-15.0, -25.0)))
    rng = np.random.default_rng(5)
    start = _scene(seed=4, colors=rng.uniform(0.1, 0.9, (3000, 3)).astype(np.float32), sh_degree=sh_degree)
    fixed = rng.uniform(size=len(start)) < 0.1
    one, rep1 = solve_colours(start, views, 6, fixed=fixed)
    two, rep2 = solve_colours(start, views, 6, fixed=fixed, view_groups=2)
    with CpuWorker() as helper:
        split, rep3 = solve_colours(start, views, 6, fixed=fixed, worker=helper)
        assert helper.requests == 1 + 7 + 1  # build, 6 iterations + the final error, drop
    assert np.array_equal(split.sh, two.sh) and rep3 == rep2
    assert rep2["psnr_after"] > rep2["psnr_before"] + 5
    np.testing.assert_allclose(two.sh, one.sh, rtol=0, atol=1e-4)
    assert rep1["intersections"] == rep2["intersections"]
    assert np.array_equal(two.sh[fixed], start.sh[fixed])


def _spill_scene(fg_scale: float):
    """A wall of splats 3 m ahead, every one its own colour, and a bar of splats 1.5 m ahead
    whose footprint is ``fg_scale`` m across (wider than the sharp bar the target views show)."""
    rng = np.random.default_rng(11)
    gx, gy = np.meshgrid(np.linspace(-1.2, 1.2, 49), np.linspace(-0.9, 0.9, 37))
    wall = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, -3.0)], 1)
    by = np.linspace(-0.45, 0.45, 19)
    bar = np.stack([np.zeros_like(by), by, np.full(by.size, -1.5)], 1)
    means = np.concatenate([wall, bar]).astype(np.float32)
    m = len(means)
    q = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], np.float32), (m, 1))
    scales = np.full((m, 3), 0.035, np.float32)
    scales[len(wall) :, :2] = fg_scale
    scales[:, 2] = 0.002
    cols = rng.uniform(0.3, 0.7, (m, 3)).astype(np.float32)
    cols[len(wall) :] = 0.05  # a dark pole
    sh = ((cols - 0.5) / SH_C0)[:, None, :]
    return GaussianCloud.from_activated(means, q, scales, np.full(m, 0.95, np.float32), sh=sh), len(wall)


def test_anchor_weight_holds_what_the_views_barely_see():
    # Tikhonov towards the anchors: splats behind the bar's rim (tiny weights) stay near their
    # colour; splats the views see fully still follow the data.
    sharp, n_wall = _spill_scene(0.012)
    wide, _ = _spill_scene(0.03)
    views = _views(sharp, dirs=((0.0, 0.0), (8.0, 0.0), (-8.0, 0.0)), size=64)
    col = lambda c: np.clip(0.5 + SH_C0 * c.sh[:, 0], 0, 1)  # noqa: E731
    anchor = col(wide)
    free, _ = solve_colours(wide, views, iterations=20)
    held, _ = solve_colours(wide, views, iterations=20, anchor_weight=0.2)
    moved_free = np.abs(col(free) - anchor)[:n_wall].max(1)
    moved_held = np.abs(col(held) - anchor)[:n_wall].max(1)
    assert moved_held.max() < 0.5 * moved_free.max(), (moved_held.max(), moved_free.max())
    # Fully seen splats: from grey, with grey anchors, the solve still recovers the colours.
    truth = _scene()
    grey = _scene(colors=np.full((len(truth), 3), 0.5, np.float32))
    out, rep = solve_colours(grey, _views(truth), iterations=30, anchor_weight=0.05)
    assert rep["psnr_after"] > rep["psnr_before"] + 10, rep
    with pytest.raises(InputError, match="anchor_weight"):
        solve_colours(grey, _views(truth, size=16), anchor_weight=-1.0)
