"""Registered inpainters (worldgen.layers.inpaint)."""

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.layers.inpaint import INPAINTERS, inpaint


def _stripes(H=48, W=96):
    x = np.arange(W)[None, :].repeat(H, 0)
    v = ((x // 4) % 2).astype(np.float32)  # vertical stripes, period 8 px
    img = np.stack([v, 0.5 * v, 1 - v], -1)
    hole = np.zeros((H, W), bool)
    hole[16:32, 40:56] = True
    return img, hole


def test_registered_names():
    assert {"patchmatch", "diffuse"} <= set(INPAINTERS)
    with pytest.raises(InputError, match="unknown inpainter"):
        inpaint("nope", *_stripes())


def test_patchmatch_continues_a_texture_that_diffusion_blurs():
    img, hole = _stripes()
    damaged = np.where(hole[..., None], 0.0, img)
    pm = inpaint("patchmatch", damaged, hole, seed=0)
    df = inpaint("diffuse", damaged, hole)
    err_pm = np.abs(pm - img)[hole].mean()
    err_df = np.abs(df - img)[hole].mean()
    assert (pm[~hole] == damaged[~hole]).all()  # only the hole changes
    assert err_pm < 0.15 < err_df  # diffusion turns stripes to grey (error ~0.3); PatchMatch keeps them


def test_guide_picks_the_matching_surface():
    # Left half red at guide 0, right half blue at guide 1; the hole sits in the red half but its
    # guide says "blue surface": the guided fill is blue.
    H, W = 32, 64
    img = np.zeros((H, W, 3), np.float32)
    img[:, : W // 2, 0] = 1.0
    img[:, W // 2 :, 2] = 1.0
    guide = np.zeros((H, W), np.float32)
    guide[:, W // 2 :] = 1.0
    hole = np.zeros((H, W), bool)
    hole[10:20, 8:20] = True
    guide[hole] = 1.0
    out = inpaint("patchmatch", img, hole, guide * 3.0, seed=1)
    assert out[hole][:, 2].mean() > 0.8 and out[hole][:, 0].mean() < 0.2


def test_deterministic_for_a_seed():
    img, hole = _stripes()
    a = inpaint("patchmatch", img, hole, seed=3)
    b = inpaint("patchmatch", img, hole, seed=3)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("shape", [(43, 85), (47, 95), (25, 51)])
def test_patchmatch_on_odd_sized_grids(shape):
    # An odd-sized level has a last row/column with no parent in the coarser level; the coarse
    # field's upsampling once indexed past it (IndexError on a 42-column parent).
    H, W = shape
    img, _ = _stripes(H, W)
    hole = np.zeros((H, W), bool)
    hole[H // 3 : 2 * H // 3, W - 12 :] = True  # reaches the last column
    damaged = np.where(hole[..., None], 0.0, img)
    out = inpaint("patchmatch", damaged, hole, seed=0)
    assert (out[~hole] == damaged[~hole]).all()
    assert np.abs(out - img)[hole].mean() < 0.2


SKY = np.array([0.45, 0.65, 0.95], np.float32)


def _horizon(H=64, W=128, band=(28, 37)):
    """Sky above row 28, a sand-coloured textured ground below it; the ground rows ``band`` are
    hidden all around (as the far ground steps behind itself on the coast). Guide: log-depth as
    the layers build it: the sky 'twice the farthest surface', the hidden band's continued ground
    nearly as far, the visible ground below it near."""
    img = np.zeros((H, W, 3), np.float32)
    img[:28] = SKY
    rng = np.random.default_rng(0)
    sand = np.array([0.85, 0.75, 0.55], np.float32) + 0.05 * rng.standard_normal((H - 28, W, 1)).astype(np.float32)
    img[28:] = sand
    guide = np.full((H, W), np.log(200.0), np.float32)
    rows = np.arange(28, H)
    guide[28:] = np.log(100.0 / (rows - 26.0))[:, None]  # 50 m at the horizon, 2.7 m at the bottom
    hole = np.zeros((H, W), bool)
    hole[band[0] : band[1]] = True
    guide[hole] = np.log(150.0)
    classes = np.zeros((H, W), np.int8)
    classes[:28] = 1  # sky
    return img, hole, guide, classes


def _sky_like(c):
    """Pixels whose colour is nearer the sky's than the sand's. [n] bool"""
    return np.abs(c - SKY).sum(-1) < np.abs(c - np.array([0.85, 0.75, 0.55])).sum(-1)


def test_hidden_ground_below_the_horizon_is_not_painted_from_the_sky():
    # The band's guide (far ground) is nearer the sky's than the visible ground's: without classes
    # PatchMatch copied sky into it (the coast: 92 % of the hidden ground sky-blue).
    img, hole, guide, classes = _horizon()
    damaged = np.where(hole[..., None], 0.0, img)
    for name in ("patchmatch", "diffuse"):
        out = inpaint(name, damaged, hole, guide, seed=0, classes=classes)
        assert not _sky_like(out[hole]).any(), name
        assert (out[~hole] == damaged[~hole]).all()
    plain = inpaint("patchmatch", damaged, hole, guide, seed=0)
    assert _sky_like(plain[hole]).mean() > 0.5  # what the constraint prevents


def test_hidden_sky_is_painted_from_the_sky_only():
    # Sky hidden behind a pole, next to the horizon: its pixels take sky, never ground.
    img, _, guide, classes = _horizon()
    hole = np.zeros(classes.shape, bool)
    hole[18:34, 60:70] = True
    classes[hole] = 0
    classes[18:28, 60:70] = 1  # the pole's upper part hides sky, its lower part ground
    out = inpaint("patchmatch", np.where(hole[..., None], 0.0, img), hole, guide, seed=2, classes=classes)
    assert _sky_like(out[18:28, 60:70].reshape(-1, 3)).all()
    assert not _sky_like(out[28:34, 60:70].reshape(-1, 3)).any()


def test_class_without_a_known_pixel_fills_from_any():
    img, hole, guide, classes = _horizon()
    classes[hole] = 5  # no known pixel has class 5
    out = inpaint("patchmatch", np.where(hole[..., None], 0.0, img), hole, guide, seed=0, classes=classes)
    assert np.isfinite(out).all() and (out[hole] > 0).any()


def test_anchor_prefers_the_surface_the_hole_continues():
    # Two grounds at the same depth: sand, and a stretch of sea-blue a quarter turn away. A thin
    # hole lies in the sand; its guide matches both (the sea is as far); the anchors (the pixels
    # each hole pixel continues, in the sand next to it) keep the distant sea out.
    H, W = 64, 256
    rng = np.random.default_rng(1)
    img = np.array([0.85, 0.75, 0.55], np.float32) + 0.03 * rng.standard_normal((H, W, 1)).astype(np.float32)
    img[:, 160:224] = np.array([0.30, 0.65, 0.80]) + 0.03 * rng.standard_normal((H, 64, 1))
    guide = np.zeros((H, W), np.float32)
    guide[:, 160:224] = 3.0
    hole = np.zeros((H, W), bool)
    hole[28:32, 32:80] = True
    guide[hole] = 3.0  # "as far as the sea"
    yy, xx = np.nonzero(hole)
    anchor = np.full((H, W), -1, np.int64)
    anchor[yy, xx] = 32 * W + xx  # the sand just below
    damaged = np.where(hole[..., None], 0.0, img)
    out = inpaint("patchmatch", damaged, hole, guide, seed=0, anchor=anchor)
    assert (out[hole][:, 2] > out[hole][:, 0]).mean() < 0.05
    plain = inpaint("patchmatch", damaged, hole, guide, seed=0)
    assert (plain[hole][:, 2] > plain[hole][:, 0]).mean() > 0.5  # the guide alone picks the sea


def test_bad_classes_and_anchors_are_refused():
    img, hole, guide, classes = _horizon()
    with pytest.raises(InputError, match="classes"):
        inpaint("patchmatch", img, hole, guide, classes=classes[:, :10])
    with pytest.raises(InputError, match="anchors"):
        inpaint("patchmatch", img, hole, guide, anchor=np.full(hole.shape, hole.size, np.int64))


def _fence_world(H=64, W=128):
    """Sky, ground 1.6 m below the eye (200 m at most) and a fence all around, a 4 m cylinder from
    the ground up to 1.4 m, hiding a band of far ground right below the horizon."""
    from worldgen.geometry.equirect import equirect_directions
    from worldgen.types import DepthMap, Panorama

    d = equirect_directions(H, W)
    y = d[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(y < 0, -1.6 / y, np.inf)
        t_fence = 4.0 / np.hypot(d[..., 0], d[..., 2])
    fence = (y * t_fence > -1.6) & (y * t_fence < -0.2) & (t_fence < t_ground)
    dist = np.where(fence, t_fence, t_ground)
    dist = np.where(y < 0, np.minimum(dist, 200.0), np.inf).astype(np.float32)
    colour = np.empty((H, W, 3), np.float32)
    colour[:] = SKY
    ground = np.isfinite(dist) & ~fence
    rng = np.random.default_rng(0)
    colour[ground] = np.array([0.35, 0.6, 0.2]) + 0.04 * rng.standard_normal((int(ground.sum()), 1))
    colour[fence] = [0.45, 0.3, 0.2]
    return Panorama(np.clip(colour, 0, 1)), DepthMap(dist, ~np.isfinite(dist))


def test_layer_paints_the_ground_behind_a_fence_from_the_ground():
    # build_layers passes the classes and anchors: the far ground hidden behind the fence's top
    # is painted from the grass, not from the sky above it (before: every such pixel sky-blue).
    from worldgen.layers import LayerConfig, build_layers

    pano, depth = _fence_world()
    layer = build_layers(pano, depth, LayerConfig(walk_radius=2.0))
    assert layer.surface.sum() >= 64 and layer.sky.any()
    grass = np.array([0.35, 0.6, 0.2])
    c = layer.colour[layer.surface]
    assert (np.abs(c - grass).sum(-1) < np.abs(c - SKY).sum(-1)).all()
    s = layer.colour[layer.sky]
    assert (np.abs(s - SKY).sum(-1) < np.abs(s - grass).sum(-1)).all()  # hidden sky stays sky
