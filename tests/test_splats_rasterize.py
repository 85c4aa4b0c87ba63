"""CPU rasterizer: parity with gsplat's own PyTorch reference functions, gradients, meta, cameras."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from worldgen.errors import InputError
from worldgen.splats.rasterize import (
    cameras_to_gsplat,
    eval_sh,
    gltf_to_opencv_world_to_cam,
    project_gaussians,
    rasterize_cpu,
    render_cloud,
    select_rasterizer,
)
from worldgen.types import Camera, GaussianCloud

_ti = pytest.importorskip("gsplat.cuda._torch_impl")


def _scene(n: int, seed: int, dtype=torch.float32, spread: float = 1.0):
    """n random splats in front of an OpenCV camera at the origin looking along +Z."""
    g = torch.Generator().manual_seed(seed)
    means = torch.empty(n, 3, dtype=dtype)
    means[:, 0] = (torch.rand(n, generator=g, dtype=dtype) - 0.5) * 2 * spread
    means[:, 1] = (torch.rand(n, generator=g, dtype=dtype) - 0.5) * 2 * spread
    means[:, 2] = 2.0 + 3.0 * torch.rand(n, generator=g, dtype=dtype)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = 0.02 + 0.12 * torch.rand(n, 3, generator=g, dtype=dtype)
    ops = 0.2 + 0.75 * torch.rand(n, generator=g, dtype=dtype)
    cols = torch.rand(n, 3, generator=g, dtype=dtype)
    return means, quats, scales, ops, cols


def _cams(c: int, w: int, h: int, dtype=torch.float32):
    """c cameras near the origin in the OpenCV frame, slightly rotated and shifted."""
    vms, ks = [], []
    for i in range(c):
        a = 0.1 * i
        R = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=dtype)
        vm = torch.eye(4, dtype=dtype)
        vm[:3, :3] = R
        vm[:3, 3] = torch.tensor([0.05 * i, -0.03 * i, 0.0], dtype=dtype)
        vms.append(vm)
        f = 0.8 * w
        ks.append(torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=dtype))
    return torch.stack(vms), torch.stack(ks)


def _dense_reference(means2d, conics, depths, radii, ops, feats, w, h, bg=None):
    """Slow twin: gsplat's compositing rules evaluated for every pixel and every splat in depth order."""
    C, N = depths.shape
    D = feats.shape[-1]
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=means2d.dtype) + 0.5, torch.arange(w, dtype=means2d.dtype) + 0.5, indexing="ij"
    )
    out = torch.zeros(C, h, w, D, dtype=means2d.dtype)
    acc = torch.zeros(C, h, w, dtype=means2d.dtype)
    for c in range(C):
        T = torch.ones(h, w, dtype=means2d.dtype)
        done = torch.zeros(h, w, dtype=torch.bool)
        for n in torch.argsort(depths[c]).tolist():
            if not bool((radii[c, n] > 0).all()):
                continue
            dx, dy = xs - means2d[c, n, 0], ys - means2d[c, n, 1]
            a, b, cc = conics[c, n]
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp(ops[n] * torch.exp(-sigma), max=0.999)
            use = (sigma >= 0) & (alpha >= 1 / 255) & ~done
            nt = T * (1 - alpha)
            finish = use & (nt <= 1e-4)
            done |= finish
            use &= ~finish
            wgt = torch.where(use, alpha * T, torch.zeros_like(T))
            out[c] += wgt[..., None] * feats[c, n]
            acc[c] += wgt
            T = torch.where(use, nt, T)
    if bg is not None:
        out += bg[:, None, None, :] * (1 - acc[..., None])
    return out, acc[..., None]


def _reference_render(means, quats, scales, ops, cols, vms, ks, w, h, sh_degree=None, bg=None):
    covars, _ = _ti._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _ti._fully_fused_projection(means, covars, vms, ks, w, h)
    C, N = depths.shape
    if sh_degree is not None:
        campos = torch.linalg.inv(vms)[:, :3, 3]
        dirs = means[None] - campos[:, None]
        feats = torch.clamp_min(_ti._spherical_harmonics(sh_degree, dirs, cols[None].expand(C, -1, -1, -1)) + 0.5, 0)
    else:
        feats = cols[None].expand(C, N, -1)
    return _dense_reference(means2d, conics, depths, radii, ops, feats, w, h, bg)


# ---------------------------------------------------------------- projection


@pytest.mark.parametrize("C", [1, 3])
def test_projection_matches_gsplat_reference(C):
    means, quats, scales, ops, _ = _scene(300, 1, torch.float64, spread=3.0)
    vms, ks = _cams(C, 40, 30, torch.float64)
    covars, _ = _ti._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    r_radii, r_m2, r_d, r_con, _ = _ti._fully_fused_projection(means, covars, vms, ks, 40, 30)
    p = project_gaussians(means, quats, scales, None, vms, ks, 40, 30)
    vis = (r_radii > 0).all(-1)
    assert vis.sum() > 50
    torch.testing.assert_close(p["means2d"][vis], r_m2[vis])
    torch.testing.assert_close(p["conics"][vis], r_con[vis], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(p["depths"], r_d)
    # gsplat's torch reference keeps splats touching the border with "> 0" where its CUDA kernel
    # (and this code) drops them with "<= 0": compare away from that tie.
    assert torch.equal(p["radii"][vis], r_radii[vis])


def test_projection_opacity_aware_radius_is_tighter():
    means, quats, scales, ops, _ = _scene(200, 2)
    vms, ks = _cams(1, 32, 32)
    full = project_gaussians(means, quats, scales, None, vms, ks, 32, 32)["radii"]
    tight = project_gaussians(means, quats, scales, ops * 0.1, vms, ks, 32, 32)["radii"]
    assert (tight <= full).all() and (tight < full).any()
    culled = project_gaussians(means, quats, scales, torch.full_like(ops, 0.001), vms, ks, 32, 32)["radii"]
    assert (culled == 0).all()  # every opacity under 1/255 is invisible


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("C,w,h", [(1, 32, 24), (2, 20, 36), (1, 23, 17)])
def test_render_matches_dense_reference(C, w, h):
    means, quats, scales, ops, cols = _scene(150, 3 + C)
    vms, ks = _cams(C, w, h)
    bg = torch.tensor([[0.2, 0.4, 0.6]] * C)
    ref, ref_a = _reference_render(means, quats, scales, ops, cols, vms, ks, w, h, bg=bg)
    img, alpha, meta = rasterize_cpu(means, quats, scales, ops, cols, vms, ks, w, h, backgrounds=bg)
    assert img.shape == (C, h, w, 3) and alpha.shape == (C, h, w, 1)
    torch.testing.assert_close(img, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(alpha, ref_a, atol=2e-5, rtol=1e-4)
    assert alpha.max() > 0.9  # the scene is not trivially empty


def test_render_saturated_pixels_stop_like_gsplat():
    # Many opaque splats stacked on the optical axis: transmittance hits the 1e-4 stop.
    n = 40
    means = torch.zeros(n, 3)
    means[:, 2] = torch.linspace(2, 4, n)
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)
    scales = torch.full((n, 3), 0.3)
    ops = torch.full((n,), 0.95)
    cols = torch.rand(n, 3, generator=torch.Generator().manual_seed(0))
    vms, ks = _cams(1, 16, 16)
    ref, ref_a = _reference_render(means, quats, scales, ops, cols, vms, ks, 16, 16)
    img, alpha, _ = rasterize_cpu(means, quats, scales, ops, cols, vms, ks, 16, 16)
    torch.testing.assert_close(img, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alpha, ref_a, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat_reference(degree):
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(64, 3, generator=g, dtype=torch.float64)
    coeffs = torch.randn(64, 16, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(eval_sh(degree, dirs, coeffs), _ti._spherical_harmonics(degree, dirs, coeffs))


def test_render_sh_matches_reference():
    means, quats, scales, ops, _ = _scene(120, 7)
    sh = torch.randn(120, 16, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    vms, ks = _cams(2, 24, 24)
    ref, _ = _reference_render(means, quats, scales, ops, sh, vms, ks, 24, 24, sh_degree=3)
    img, _, _ = rasterize_cpu(means, quats, scales, ops, sh, vms, ks, 24, 24, sh_degree=3)
    torch.testing.assert_close(img, ref, atol=3e-5, rtol=1e-4)


def test_depth_modes():
    means, quats, scales, ops, cols = _scene(100, 9)
    vms, ks = _cams(1, 24, 24)
    rgbd, a, _ = rasterize_cpu(means, quats, scales, ops, cols, vms, ks, 24, 24, render_mode="RGB+D")
    ed, a2, _ = rasterize_cpu(means, quats, scales, ops, cols, vms, ks, 24, 24, render_mode="ED")
    assert rgbd.shape[-1] == 4 and ed.shape[-1] == 1
    torch.testing.assert_close(a, a2)
    m = a[..., 0] > 0.5
    torch.testing.assert_close(ed[..., 0][m], (rgbd[..., 3] / a[..., 0])[m])
    # expected depth of covered pixels lies within the scene's depth range
    assert ed[..., 0][m].min() >= 1.5 and ed[..., 0][m].max() <= 5.5


# ---------------------------------------------------------------- gradients


def test_gradcheck_float64():
    means, quats, scales, ops, cols = _scene(12, 11, torch.float64, spread=0.6)
    scales = scales * 2
    vms, ks = _cams(1, 10, 8, torch.float64)
    params = [t.clone().requires_grad_(True) for t in (means, quats, scales, ops, cols)]

    def f(m, q, s, o, c):
        img, alpha, _ = rasterize_cpu(m, q, s, o, c, vms, ks, 10, 8, render_mode="RGB+ED")
        return img, alpha

    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-4, rtol=1e-3)


def _backward(render, params, wi, wa):
    """Render with fresh leaf copies of ``params``, back-propagate the loss sum(img * wi) +
    sum(alpha * wa) and return (the render's outputs, the parameters' gradients)."""
    ps = [t.clone().requires_grad_(True) for t in params]
    out = render(*ps)
    img, alpha = out[:2]
    ((img * wi).sum() + (alpha * wa).sum()).backward()
    return out, [p.grad for p in ps]


@pytest.mark.parametrize("saturated,tile_parts", [(False, 1), (True, 1), (False, 2), (True, 2)])
def test_backward_matches_reference_autograd(saturated, tile_parts):
    # The hand-written compositing backward against autograd through the dense reference
    # (gsplat's projection + per-pixel compositing), including the 0.999 clamp and the 1e-4 stop.
    means, quats, scales, ops, cols = _scene(60, 21, torch.float64, spread=0.8)
    if saturated:
        means[:, 2] = torch.linspace(2.0, 4.0, 60, dtype=torch.float64)
        scales = scales * 3
        ops = torch.full_like(ops, 0.999)
        ops[::3] = 0.9999  # above the clamp
    vms, ks = _cams(2, 19, 13, torch.float64)
    g = torch.Generator().manual_seed(2)
    wi, wa = (
        torch.randn(2, 13, 19, 3, generator=g, dtype=torch.float64),
        torch.randn(2, 13, 19, 1, generator=g, dtype=torch.float64),
    )
    grads = []
    for fn in (functools.partial(rasterize_cpu, tile_parts=tile_parts), _reference_render):
        grads.append(_backward(lambda *ps: fn(*ps, vms, ks, 19, 13), (means, quats, scales, ops, cols), wi, wa)[1])  # noqa: B023
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-6)


def test_grad_mask_keeps_the_masked_in_gradients_bit_for_bit():
    # grad_mask skips the masked-out splats' intersections in the backward (refinement passes the
    # frozen backing layer and sky dome): the other splats' gradients must be exactly those of an
    # unmasked backward, and the masked-out ones must come out zero. 2 cameras, RGB + expected
    # depth, a loss on colour and alpha, as the optimiser's.
    means, quats, scales, ops, cols = _scene(200, 5, spread=0.8)
    vms, ks = _cams(2, 23, 17)
    g = torch.Generator().manual_seed(3)
    wi, wa = torch.randn(2, 17, 23, 4, generator=g), torch.randn(2, 17, 23, 1, generator=g)
    mask = torch.rand(200, generator=g) < 0.6
    grads = []
    for gm in (None, mask):
        (_, _, meta), g = _backward(
            lambda *ps: rasterize_cpu(*ps, vms, ks, 23, 17, render_mode="RGB+ED", grad_mask=gm),  # noqa: B023
            (means, quats, scales, ops, cols),
            wi,
            wa,
        )
        grads.append(g)
    assert meta["n_intersections"] > 500
    for full, masked in zip(*grads):
        assert float(full[mask].abs().sum()) > 0
        assert torch.equal(masked[mask], full[mask])
        assert not bool(masked[~mask].any())


def test_tile_parts_in_a_helper_process_give_the_same_bytes():
    # Refinement bins and composites even and odd tile rows apart, the odd ones in a helper
    # process when there is a second core: the image, alpha, every gradient and the colour
    # solve's weights must be the same bytes with the helper as without it, and agree with the
    # one-part render to float32 rounding (the parts' transmittance sums and per-splat gradient
    # sums are added in another order).
    from worldgen.splats.rasterize import composite_weights
    from worldgen.splats.workers import CpuWorker

    means, quats, scales, ops, cols = _scene(300, 8, spread=0.8)
    vms, ks = _cams(2, 29, 22)
    g = torch.Generator().manual_seed(4)
    wi, wa = torch.randn(2, 22, 29, 4, generator=g), torch.randn(2, 22, 29, 1, generator=g)
    mask = torch.rand(300, generator=g) < 0.6

    def run(parts, worker, gm):
        (img, alpha, meta), grads = _backward(
            lambda *ps: rasterize_cpu(
                *ps, vms, ks, 29, 22, render_mode="RGB+ED", grad_mask=gm, tile_parts=parts, worker=worker
            ),
            (means, quats, scales, ops, cols),
            wi,
            wa,
        )
        return [img.detach(), alpha.detach()] + grads, meta["n_intersections"]

    with CpuWorker() as helper:
        for gm, n in ((None, 2), (mask, 2), (mask, 3)):
            split, n2 = run(n, helper, gm)
            alone, n2b = run(n, None, gm)
            whole, n1 = run(1, None, gm)
            assert n1 == n2 == n2b > 1000
            for a, b, c in zip(split, alone, whole):
                assert torch.equal(a, b)
                torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4)
        w2 = composite_weights(means, quats, scales, ops, vms, ks, 29, 22, tile_parts=2, worker=helper)
        assert helper.requests == 7 and helper.helper_cpu > 0
    w2b = composite_weights(means, quats, scales, ops, vms, ks, 29, 22, tile_parts=2)
    w1 = composite_weights(means, quats, scales, ops, vms, ks, 29, 22)
    assert all(torch.equal(a, b) for a, b in zip(w2, w2b))
    # The same (pixel, splat) weights, the parts' lists one after the other.
    key = lambda w: torch.argsort(w[0] * 1000 + w[1], stable=True)  # noqa: E731
    for a, b in zip((t[key(w1)] for t in w1), (t[key(w2)] for t in w2)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_helper_process_reports_errors_and_closes():
    from worldgen.splats.workers import CpuWorker, helper_count

    assert helper_count(1) == 0 and helper_count(2) in (0, 1)
    with CpuWorker() as helper:
        helper.submit("drop_state", 12345)
        assert helper.result() is None
        helper.submit("take_state_missing_op", 1)
        with pytest.raises(RuntimeError, match="KeyError"):
            helper.result()
        with pytest.raises(RuntimeError, match="nothing was submitted"):
            helper.result()
    with pytest.raises(InputError, match="tile_parts"):
        rasterize_cpu(*_scene(5, 1), *_cams(1, 8, 8), 8, 8, tile_parts=0)


def test_needle_splat_near_camera_keeps_float32_conics():
    # A 10 m needle 5 cm in front of the camera, tilted in the image: a0 c0 ~ 1e19 in float32.
    # The direct determinant a c - b^2 cancelled to the 1e-10 clamp there (conics 1e18x too big,
    # gradients overflowing to inf and NaN through Adam); the cross-product form stays exact.
    a = math.radians(30)
    ps = {
        "means": torch.tensor([[0.0, 0.0, 0.05], [0.0, 0.0, 3.0]]),
        "quats": torch.tensor([[math.cos(a), 0, 0, math.sin(a)], [1.0, 0, 0, 0]]),
        "scales": torch.tensor([[10.0, 1e-6, 1e-6], [0.2, 0.2, 0.2]]),
        "opacities": torch.tensor([0.8, 0.9]),
    }
    vms, ks = _cams(1, 32, 32)
    ref = project_gaussians(
        **{k: v.double() for k, v in ps.items()}, viewmats=vms.double(), Ks=ks.double(), width=32, height=32
    )["conics"]
    got = project_gaussians(**ps, viewmats=vms, Ks=ks, width=32, height=32)["conics"]
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=0)
    leaves = {k: v.clone().requires_grad_(True) for k, v in ps.items()}
    cols = torch.rand(2, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    img, alpha, _ = rasterize_cpu(*leaves.values(), cols, vms, ks, 32, 32, render_mode="RGB+ED")
    (img.sum() + alpha.sum()).backward()
    for t in (*leaves.values(), cols):
        assert torch.isfinite(t.grad).all()


def test_means2d_gradient_feeds_default_strategy():
    from gsplat.strategy import DefaultStrategy

    means, quats, scales, ops, cols = _scene(200, 12)
    params = torch.nn.ParameterDict(
        {"means": means, "quats": quats, "scales": torch.log(scales), "opacities": torch.logit(ops), "colors": cols}
    )
    opts = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    strat = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=1e-9, verbose=False)
    state = strat.initialize_state(scene_scale=1.0)
    vms, ks = _cams(2, 24, 24)
    img, _, meta = rasterize_cpu(
        params["means"],
        params["quats"],
        torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]),
        params["colors"],
        vms,
        ks,
        24,
        24,
    )
    strat.step_pre_backward(params, opts, state, 1, meta)
    img.sum().backward()
    assert meta["means2d"].grad is not None and meta["means2d"].grad.shape == meta["means2d"].shape
    n0 = len(params["means"])
    strat.step_post_backward(params, opts, state, 1, meta, packed=meta["packed"])
    assert len(params["means"]) > n0  # densification ran on CPU


# ---------------------------------------------------------------- cameras and errors


def test_gltf_to_opencv_convention():
    # A point 2 m in front of a glTF camera (along its -Z) is at OpenCV z = +2, and "up" is -y.
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 0.5, 0.0]
    vm = gltf_to_opencv_world_to_cam(pose)
    p = vm @ np.array([1.0, 0.5 + 0.3, -2.0, 1.0])
    np.testing.assert_allclose(p[:3], [0.0, -0.3, 2.0], atol=1e-12)


def test_render_cloud_matches_camera_geometry():
    # One large opaque splat straight ahead of a glTF camera lands in the image centre at 3 m.
    cloud = GaussianCloud.from_activated(
        np.array([[0.0, 0.0, -3.0]]),
        np.array([[1.0, 0, 0, 0]]),
        np.full((1, 3), 0.5),
        np.array([0.99]),
        colors=np.array([[1.0, 0, 0]]),
    )
    cam = Camera.perspective(17, 17, 90.0)
    out = render_cloud(cloud, [cam], rasterizer="cpu")
    assert out["rgb"].shape == (1, 17, 17, 3)
    assert out["alpha"][0, 8, 8] > 0.98
    assert abs(out["depth"][0, 8, 8] - 3.0) < 0.05
    assert out["rgb"][0, 8, 8, 0] > 0.95 and out["rgb"][0, 8, 8, 1] < 0.05


def test_errors():
    means, quats, scales, ops, cols = _scene(10, 0)
    vms, ks = _cams(1, 8, 8)
    with pytest.raises(InputError, match="render_mode"):
        rasterize_cpu(means, quats, scales, ops, cols, vms, ks, 8, 8, render_mode="XYZ")
    with pytest.raises(InputError, match="disagree"):
        rasterize_cpu(means[:5], quats, scales, ops, cols, vms, ks, 8, 8)
    with pytest.raises(InputError, match="perspective"):
        cameras_to_gsplat([Camera.equirect(16)])
    with pytest.raises(InputError, match="one image size"):
        cameras_to_gsplat([Camera.perspective(8, 8, 90), Camera.perspective(9, 8, 90)])


def test_select_rasterizer_on_cpu(monkeypatch):
    name, reason = select_rasterizer()
    if not torch.cuda.is_available():
        assert name == "cpu" and "CUDA" in reason
    monkeypatch.setenv("WORLDGEN_RASTERIZER", "cpu")
    assert select_rasterizer()[0] == "cpu"
    monkeypatch.setenv("WORLDGEN_RASTERIZER", "vulkan")
    with pytest.raises(InputError, match="WORLDGEN_RASTERIZER"):
        select_rasterizer()


def test_nothing_visible_renders_background_with_zero_gradients():
    means = torch.tensor([[0.0, 0.0, -3.0]], requires_grad=True)  # behind an OpenCV camera
    quats, scales, ops = torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1), torch.tensor([0.9])
    vms, ks = _cams(1, 16, 16)
    bg = torch.tensor([[0.1, 0.2, 0.3]])
    img, alpha, meta = rasterize_cpu(means, quats, scales, ops, torch.rand(1, 3), vms, ks, 16, 16, backgrounds=bg)
    img.sum().backward()
    assert meta["n_intersections"] == 0 and float(alpha.detach().abs().sum()) == 0.0
    torch.testing.assert_close(img, bg[:, None, None, :].expand(1, 16, 16, 3))
    assert torch.equal(means.grad, torch.zeros(1, 3))


def _segment_bounds(sorted_ids):
    """Reference for the binner's run bounds: index of the first and of the last element of each run of equal values, per element. [M] int64 x 2"""
    import torch

    m = sorted_ids.shape[0]
    if m == 0:
        e = torch.zeros(0, dtype=torch.int64, device=sorted_ids.device)
        return e, e
    is_start = torch.ones(m, dtype=torch.bool, device=sorted_ids.device)
    is_start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    firsts = torch.nonzero(is_start).reshape(-1)
    seg = torch.cumsum(is_start, 0) - 1
    lasts = torch.cat([firsts[1:] - 1, torch.tensor([m - 1], device=sorted_ids.device)])
    return firsts.index_select(0, seg), lasts.index_select(0, seg)


@pytest.mark.parametrize("C, w, h, opacity, seed", [(1, 30, 18, 1.0, 12), (2, 17, 13, 1.0, 13), (1, 30, 18, 0.1, 0)])
def test_bin_runs_bounds_and_transmittance(C, w, h, opacity, seed):
    # The binner's bookkeeping on its own: every pixel's intersections form one run, the run
    # bounds (taken from the counting sort's group counts) are those of the list itself, no
    # candidate that failed the exact alpha test is left (they ride along with alpha 0 until
    # the transmittance cut), runs are front to back and T is the product of (1 - alpha) before.
    # Faint splats (opacity x 0.1, seed 0: no candidate fails the exact test) never reach the
    # cut, so there the bounds are the ones taken from the counts.
    from worldgen.splats.rasterize import _bin_intersections, _project_packed

    means, quats, scales, ops, _ = _scene(300, seed)
    ops = ops * opacity
    vms, ks = _cams(C, w, h)
    pk = _project_packed(means, quats, scales, ops, vms, ks, w, h, 0.3, 0.01, 1e10, 0.0, False)
    pix, entry, alpha, trans, end, clamped = _bin_intersections(
        pk["means2d"], pk["conics"], pk["opacities"], pk["depths"], pk["radii"], pk["camera_ids"], w, h, 10**8
    )
    assert pix.numel() > 100 and int(pix.max()) < C * w * h
    start, e_ref = _segment_bounds(pix)
    assert torch.equal(end, e_ref)
    firsts = torch.unique(start)
    assert firsts.numel() == torch.unique(pix).numel()  # one run per pixel
    assert bool((alpha >= 1 / 255).all()) and bool((alpha <= 0.999).all())
    d = pk["depths"].index_select(0, entry)
    same = pix[1:] == pix[:-1]
    assert bool((d[1:][same] >= d[:-1][same]).all())
    # T_k = prod over earlier intersections of the same pixel of (1 - alpha), in float64.
    logt = torch.log1p(-alpha.double())
    cs = torch.cumsum(logt, 0)
    expect = torch.exp(cs - logt - (cs - logt).index_select(0, start)).float()
    torch.testing.assert_close(trans, expect, atol=1e-6, rtol=1e-5)
    assert bool((trans * (1 - alpha) > 1e-4 - 1e-9).all())  # cut where gsplat stops
    assert not bool(clamped.any()) or bool((alpha[clamped] == 0.999).all())
