"""Gaussian initialisation from RGB-D."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.evaluation.geometry import _Caster, analytic_scene
from worldgen.splats.init import InitConfig, _matrix_to_wxyz, init_gaussians
from worldgen.types import SH_C0, DepthMap, Panorama

H = 64


@pytest.fixture(scope="module")
def outdoor():
    return analytic_scene("outdoor", H)


@pytest.fixture(scope="module")
def room():
    return analytic_scene("room", H)


def _rotmats(q):
    w, x, y, z = q.T.astype(np.float64)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        1,
    )


def test_one_splat_per_pixel_on_its_ray(room):
    pano, depth, _, _ = room
    g = init_gaussians(pano, depth)
    assert len(g) == H * 2 * H
    r = np.linalg.norm(g.means, axis=1)
    assert np.allclose(np.sort(r), np.sort(depth.depth.ravel()), rtol=1e-5)
    # Colour is the pixel colour through the SH DC term.
    assert np.allclose(g.colors, pano.image.reshape(-1, 3), atol=1e-5)
    assert g.sh.shape == (H * 2 * H, 1, 3)


def test_discs_lie_on_the_surface(room):
    """Floor splats: thin axis vertical; wall splats at z = -4: thin axis along Z."""
    pano, depth, _, _ = room
    g = init_gaussians(pano, depth)
    R = _rotmats(g.quats)
    thin = np.take_along_axis(R, g.log_scales.argmin(1)[:, None, None].repeat(3, 1), 2)[..., 0]
    floor = np.abs(g.means[:, 1] + 1.6) < 1e-4
    assert floor.sum() > 100
    assert np.median(np.abs(thin[floor, 1])) > 0.99
    back = np.abs(g.means[:, 2] + 4.0) < 1e-4
    assert np.median(np.abs(thin[back, 2])) > 0.99
    s = np.sort(g.scales, axis=1)
    assert np.median(s[:, 0] / s[:, 1]) == pytest.approx(0.1, rel=0.05)


def test_footprint_scale_matches_pixel(room):
    """Straight ahead on the back wall (facing the camera) the tangent sigma is 0.6 x d x pixel angle."""
    pano, depth, _, _ = room
    g = init_gaussians(pano, depth)
    row, col = H // 2, H  # just below the horizon, centre column: looking along -Z at the wall
    i = row * 2 * H + col
    d = depth.depth[row, col]
    pix = np.pi / H
    big = np.sort(g.scales[i])[1:]
    assert np.allclose(big, 0.6 * d * pix, rtol=0.05)


def _slow_wxyz(m):
    """Reference twin: Shepperd's method one matrix at a time, branching on the largest term."""
    out = []
    for r in m.astype(np.float64):
        tr = np.trace(r)
        k = int(np.argmax([tr, r[0, 0], r[1, 1], r[2, 2]]))
        if k == 0:
            s = 2 * np.sqrt(1 + tr)
            q = [s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif k == 1:
            s = 2 * np.sqrt(1 + 2 * r[0, 0] - tr)
            q = [(r[2, 1] - r[1, 2]) / s, s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif k == 2:
            s = 2 * np.sqrt(1 + 2 * r[1, 1] - tr)
            q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s]
        else:
            s = 2 * np.sqrt(1 + 2 * r[2, 2] - tr)
            q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4]
        q = np.array(q)
        out.append(q if q[0] >= 0 else -q)
    return np.array(out)


def test_quaternion_twin():
    """The branch-free conversion against the slow reference on random rotations."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    R = _rotmats(q)
    fast = _matrix_to_wxyz(R)
    assert np.allclose(fast, _slow_wxyz(R), atol=2e-5)
    assert np.allclose(_rotmats(fast), R, atol=1e-4)


def test_rotation_columns_are_surface_frame(room):
    pano, depth, _, _ = room
    g = init_gaussians(pano, depth)
    R = _rotmats(g.quats)
    # Column 2 (the thin axis) faces the capture point.
    assert ((R[:, :, 2] * g.means).sum(1) < 0).mean() > 0.99


def test_sky_dome_and_drop(outdoor):
    pano, depth, _, _ = outdoor
    dome = init_gaussians(pano, depth, InitConfig(sky_radius=50.0))
    assert len(dome) == depth.shape[0] * depth.shape[1]
    sky_r = np.linalg.norm(dome.means[int(depth.valid.sum()) :], axis=1)
    assert np.allclose(sky_r, 50.0, rtol=1e-5)
    drop = init_gaussians(pano, depth, InitConfig(sky="drop"))
    assert len(drop) == int(depth.valid.sum())


def test_budget_merge_without_floaters(room):
    pano, depth, gv, gf = room
    g = init_gaussians(pano, depth, InitConfig(max_splats=2000))
    assert 0 < len(g) <= 2000
    dist = _Caster([(gv, gf)]).distance(g.means)
    # Merged splats take the nearest surface of their block: nearly all lie on a true surface;
    # blocks straddling a crease sit inside the corner by less than half a block, never
    # between an occluder and the wall behind it (that would be metres).
    assert np.percentile(dist, 95) < 1e-3
    assert dist.max() < 0.5 * np.median(g.scales.max(1))
    assert g.scales.max() < 2.0


def test_budget_counts_surface_and_sky_blocks_apart(outdoor):
    # A block holding both surface and sky pixels merges into one splat per layer, so counting
    # the blocks of their union undercounted at the skyline (20556 splats for --max-splats 20000).
    pano, depth, _, _ = outdoor
    n = depth.shape[0] * depth.shape[1]
    for budget in (n // 3, n // 7, n // 20, n // 50):
        assert 0 < len(init_gaussians(pano, depth, InitConfig(max_splats=budget))) <= budget


def test_sh_degree_and_opacity(room):
    pano, depth, _, _ = room
    g = init_gaussians(pano, depth, InitConfig(sh_degree=3, opacity=0.5))
    assert g.sh.shape[1] == 16
    assert np.all(g.sh[:, 1:] == 0)
    assert np.allclose(g.opacities, 0.5)
    assert np.allclose(g.sh[:, 0], (pano.image.reshape(-1, 3) - 0.5) / SH_C0, atol=1e-5)


def test_deterministic(room):
    pano, depth, _, _ = room
    a = init_gaussians(pano, depth, InitConfig(max_splats=3000))
    b = init_gaussians(pano, depth, InitConfig(max_splats=3000))
    for k in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        assert np.array_equal(getattr(a, k), getattr(b, k))


@pytest.mark.parametrize(
    "bad", [{"opacity": 1.0}, {"sh_degree": 4}, {"max_splats": -1}, {"sky": "keep"}, {"thickness": 0.0}]
)
def test_bad_config(room, bad):
    pano, depth, _, _ = room
    with pytest.raises(InputError):
        init_gaussians(pano, depth, InitConfig(**bad))


def test_size_mismatch():
    pano = Panorama(np.zeros((8, 16, 3), np.float32))
    depth = DepthMap(np.ones((4, 8), np.float32), np.zeros((4, 8), bool))
    with pytest.raises(InputError, match="resize the depth"):
        init_gaussians(pano, depth)


def test_registered_backend(room):
    from worldgen.registry import Request, StageContext, get_backend

    b = get_backend("gaussians", "init")
    pano, depth, _, _ = room
    cfg = b.make_config("balanced")
    res = b.run(StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(), cfg))
    assert len(res.artifacts["gaussians"]) == H * 2 * H
    assert res.report["splats"] == H * 2 * H


def test_near_side_of_depth_edges_gets_a_narrower_footprint():
    """A near box in front of a far wall: the box's edge pixels shrink across the edge only, so a
    renderer that composites the nearer splat first does not fatten the silhouette."""
    from worldgen.splats.init import near_side_of_edges

    h, w = 32, 64
    d = np.full((h, w), 10.0, np.float32)
    d[10:20, 20:40] = 2.0  # the box
    pano = Panorama(np.full((h, w, 3), 0.5, np.float32))
    depth = DepthMap(d, np.zeros((h, w), bool))
    across, down = near_side_of_edges(d, np.ones((h, w), bool))
    assert across[12, 20] and across[12, 39] and not across[12, 25] and not across[12, 19]
    assert down[10, 25] and down[19, 25] and not down[15, 25] and not down[9, 25]
    full = init_gaussians(pano, depth, InitConfig(edge_shrink=1.0))
    half = init_gaussians(pano, depth, InitConfig(edge_shrink=0.5))
    idx = lambda r, c: r * w + c  # noqa: E731 (row-major pixel order)
    # Left edge of the box: one tangent axis halves, the other keeps its size; inside nothing changes.
    s_full, s_half = np.sort(full.scales[idx(14, 20), :2]), np.sort(half.scales[idx(14, 20), :2])
    np.testing.assert_allclose(s_half, [s_full[0] * 0.5, s_full[1]], rtol=1e-4)
    np.testing.assert_array_equal(full.scales[idx(14, 30)], half.scales[idx(14, 30)])
    np.testing.assert_array_equal(full.scales[idx(14, 19)], half.scales[idx(14, 19)])  # the far side
    with pytest.raises(InputError):
        init_gaussians(pano, depth, InitConfig(edge_shrink=0.0))


def test_merged_blocks_on_the_near_side_of_an_edge_are_narrowed_too():
    h, w = 32, 64
    d = np.full((h, w), 10.0, np.float32)
    d[8:24, 16:48] = 2.0
    pano, depth = Panorama(np.full((h, w, 3), 0.5, np.float32)), DepthMap(d, np.zeros((h, w), bool))
    full = init_gaussians(pano, depth, InitConfig(edge_shrink=1.0, max_splats=600))
    half = init_gaussians(pano, depth, InitConfig(edge_shrink=0.5, max_splats=600))
    assert len(full) == len(half) <= 600
    ratio = half.scales[:, :2].min(1) / full.scales[:, :2].min(1)
    near = np.linalg.norm(full.means, axis=1) < 3
    assert np.isclose(ratio, 0.5, rtol=1e-3).sum() > 10  # the box's rim
    assert np.isclose(ratio[~near], 1.0).all()  # the wall behind never shrinks
    assert (ratio[near] > 0.99).sum() > 10  # nor the box's inside


def test_backing_splats_take_each_blocks_far_side_behind_it():
    """One splat per 2x2 block, ``push`` times farther than the block's farthest surface, with the
    colour of that surface: a block across a silhouette is backed by the background, not the box."""
    from worldgen.splats.init import backing_gaussians

    h, w = 32, 64
    d = np.full((h, w), 10.0, np.float32)
    d[9:21, 21:41] = 2.0  # a box whose edges cut through 2x2 blocks
    sky = np.zeros((h, w), bool)
    sky[:4] = True
    d[sky] = np.inf
    img = np.full((h, w, 3), 0.2, np.float32)
    img[9:21, 21:41] = 0.9
    img[sky] = (0.3, 0.5, 0.9)
    pano, depth = Panorama(img), DepthMap(d, sky)
    b = backing_gaussians(pano, depth, 2, 1.05)
    assert len(b) == (h // 2) * (w // 2)
    r = np.linalg.norm(b.means, axis=1).reshape(h // 2, w // 2)
    col = b.colors.reshape(h // 2, w // 2, 3)
    np.testing.assert_allclose(r[5, 5], 10.5, rtol=1e-5)  # wall
    np.testing.assert_allclose(r[7, 15], 2.1, rtol=1e-5)  # inside the box
    # Blocks (rows 8-9, columns 20-21) and (rows 20-21, columns 40-41) straddle the box's edge:
    # backed by the wall, in the wall's colour.
    for i, j in ((4, 10), (10, 20)):
        np.testing.assert_allclose(r[i, j], 10.5, rtol=1e-5)
        np.testing.assert_allclose(col[i, j], 0.2, atol=1e-5)
    np.testing.assert_allclose(col[7, 15], 0.9, atol=1e-5)
    # Sky blocks sit on the dome (1.5 x the farthest surface, at least 10 m) pushed back, in sky colour.
    np.testing.assert_allclose(r[0], 15.0 * 1.05, rtol=1e-5)
    np.testing.assert_allclose(col[0], np.broadcast_to((0.3, 0.5, 0.9), (w // 2, 3)), atol=1e-5)
    assert len(backing_gaussians(pano, depth, 3)) == 11 * 22  # ceil(32 / 3) rows, twice as many columns
    assert len(backing_gaussians(pano, depth, 2, config=InitConfig(sky="drop"))) == len(b) - 2 * (w // 2)
    with pytest.raises(InputError):
        backing_gaussians(pano, depth, 0)


def test_backing_fills_the_gaps_between_narrow_splats():
    """Narrow pixel splats (footprint 0.35) leave the background showing between their centres in
    a view at their own resolution; the backing layer closes those gaps."""
    from worldgen.splats.init import backing_gaussians
    from worldgen.splats.rasterize import render_cloud
    from worldgen.splats.views import view_camera
    from worldgen.types import GaussianCloud

    h = 64
    pano = Panorama(np.full((h, 2 * h, 3), 0.6, np.float32))
    depth = DepthMap(np.full((h, 2 * h), 5.0, np.float32), np.zeros((h, 2 * h), bool))
    narrow = init_gaussians(pano, depth, InitConfig(footprint_sigma=0.35))
    cam = view_camera(10.0, 5.0, h // 2)  # 90°: the splats' own resolution
    alone = render_cloud(narrow, [cam], rasterizer="cpu")["alpha"][0]
    both = GaussianCloud.concatenate([narrow, backing_gaussians(pano, depth, 2)])
    backed = render_cloud(both, [cam], rasterizer="cpu")["alpha"][0]
    assert alone.min() < 0.97
    assert backed.min() > 0.995
