"""Backfill splats: they sit behind depth edges at the far side's depth and colour, never in front."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.geometry import equirect_directions
from worldgen.splats.backfill import backfill_gaussians
from worldgen.splats.init import InitConfig
from worldgen.types import DepthMap, Panorama


def _pole_world(h: int = 64):
    """A red wall 5 m away all round, a white post 1.5 m away straight ahead, sky above 40°."""
    W = 2 * h
    d = np.full((h, W), 5.0, np.float32)
    col = np.zeros((h, W, 3), np.float32)
    col[..., 0] = 0.8
    post = slice(W // 2 - 3, W // 2 + 3)
    d[:, post] = 1.5
    col[:, post] = 1.0
    lat = equirect_directions(h)[..., 1]
    sky = lat > np.sin(np.radians(40))
    d[sky] = np.inf
    col[sky] = [0.3, 0.5, 0.9]
    return Panorama(col), DepthMap(d, sky), post


def test_background_continues_behind_the_post():
    pano, depth, post = _pole_world()
    cloud = backfill_gaussians(pano, depth, band_deg=8.0)
    assert len(cloud) > 0
    dist = np.linalg.norm(cloud.means, axis=1)
    dirs = cloud.means / dist[:, None]
    # Every new splat is behind the surface the panorama shows along its ray: never a floater.
    from worldgen.geometry.equirect import direction_to_pixel

    x, y = direction_to_pixel(dirs.astype(np.float64), 128, 64)
    seen = depth.depth[np.clip(y.astype(int), 0, 63), np.clip(x.astype(int), 0, 127)]
    assert np.all(dist > 1.1 * np.where(np.isfinite(seen), seen, 0.0))
    # Behind the post: the wall continues at its own distance and colour.
    lon = np.degrees(np.arctan2(dirs[:, 0], -dirs[:, 2]))
    behind_post = (np.abs(lon) < 2.0) & (dist < 6)
    assert behind_post.sum() > 0
    assert np.allclose(dist[behind_post], 5.0, atol=1e-3)
    assert np.allclose(cloud.colors[behind_post], [0.8, 0.0, 0.0], atol=1e-3)
    # Above the wall's top edge the sky continues on its dome (radius max(10 m, 1.5 x the farthest surface)).
    sky = dist > 6
    assert sky.sum() > 0 and np.allclose(dist[sky], 10.0, atol=1e-3)
    assert np.allclose(cloud.colors[sky], [0.3, 0.5, 0.9], atol=1e-3)


def test_flat_world_needs_no_backfill_and_options_apply():
    h = 32
    pano = Panorama(np.full((h, 2 * h, 3), 0.5, np.float32))
    depth = DepthMap(np.full((h, 2 * h), 3.0, np.float32), np.zeros((h, 2 * h), bool))
    assert len(backfill_gaussians(pano, depth)) == 0
    p2, d2, _ = _pole_world()
    full = backfill_gaussians(p2, d2, 8.0)
    coarse = backfill_gaussians(p2, d2, 8.0, step=2)
    assert 0 < len(coarse) < len(full)
    assert backfill_gaussians(p2, d2, 8.0, config=InitConfig(sh_degree=2)).sh.shape[1] == 9
    assert len(backfill_gaussians(p2, d2, 0.0)) == 0
    with pytest.raises(InputError):
        backfill_gaussians(p2, d2, -1.0)


def test_layer_splats_sit_on_the_hidden_background():
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize
    from worldgen.splats.backfill import layer_gaussians

    spec, _ = parse_prompt("a cozy living room interior", 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=256, previews=False))
    cloud = layer_gaussians(pano, depth, 2.0)
    assert len(cloud) > 0
    # Every splat lies behind the first surface of its own ray (hidden from the capture point).
    from worldgen.geometry.equirect import direction_to_pixel

    r = np.linalg.norm(cloud.means, axis=1)
    x, y = direction_to_pixel(cloud.means / r[:, None], depth.shape[1], depth.shape[0])
    first = depth.depth[np.minimum(y.astype(int), depth.shape[0] - 1), x.astype(int)]
    assert (r > 1.05 * first).mean() > 0.99
    assert len(layer_gaussians(pano, depth, 0.0)) == 0
    a = layer_gaussians(pano, depth, 2.0, step=2)
    assert 0 < len(a) < len(cloud)


def _crown_world(h: int = 128):
    """``make demo``'s hole, reduced: a wide crown 5 m away against the sky (|lon| < 10°, 5-35° up),
    over a farther object 18 m away that ends behind it (lon -40° to 3°, up to 12°), on ground.

    The hidden layer continues the far object up behind the crown and the sky beside it, so the
    hidden surface meets hidden sky along a vertical seam behind the crown (lon 3°)."""
    W = 2 * h
    dirs = equirect_directions(h)
    lat = np.degrees(np.arcsin(dirs[..., 1]))
    lon = np.degrees(np.arctan2(dirs[..., 0], -dirs[..., 2]))
    d = np.full((h, W), np.inf, np.float32)
    col = np.zeros((h, W, 3), np.float32)
    col[:] = [0.55, 0.7, 0.95]
    ground = lat < -0.5
    d[ground] = np.minimum(1.6 / np.sin(np.radians(-lat[ground])), 300.0)
    col[ground] = [0.3, 0.5, 0.2]
    far = (lon > -40) & (lon < 3) & (lat >= -0.5) & (lat < 12)
    d[far] = 18.0
    col[far] = [0.5, 0.4, 0.3]
    crown = (np.abs(lon) < 10) & (lat > 5) & (lat < 35)
    d[crown] = 5.0
    col[crown] = [0.1, 0.35, 0.1]
    return Panorama(col), DepthMap(d, ~np.isfinite(d))


def test_no_gap_between_hidden_surface_and_hidden_sky_behind_a_crown():
    """Stepping 1-2 m aside opens a gap between the continued far object and the hidden sky
    (they slide apart by the parallax of 18 m): a hole in the unrefined splats unless the sky
    backing lies behind them (``make demo``'s magenta hole beside a canopy top, docs/splats.md)."""
    from worldgen.registry import Request, StageContext, get_backend
    from worldgen.splats.rasterize import render_cloud
    from worldgen.splats.views import view_camera

    pano, depth = _crown_world()
    b = get_backend("gaussians", "refine")
    holes = {}
    for factor in (0, 4):
        cfg = b.make_config("fast", {"device": "cpu", "sky_backing_factor": factor})
        cloud = b.run(StageContext("gaussians", {"panorama": pano, "depth": depth}, Request(seed=0), cfg)).artifacts[
            "gaussians"
        ]
        cams = [view_camera(0.0, 8.0, 96, position=np.array([x, 0.0, 0.0])) for x in (1.0, 2.0, -1.0, -2.0)]
        holes[factor] = (render_cloud(cloud, cams, rasterizer="cpu")["alpha"] < 0.5).sum(axis=(1, 2))
    assert holes[0].sum() > 0  # the configuration reproduces the gap without the sky backing
    assert holes[4].sum() == 0


def test_sky_backing_lies_on_the_dome_behind_surfaces_near_the_sky():
    from worldgen.geometry.equirect import direction_to_pixel
    from worldgen.layers import LayerConfig, build_layers
    from worldgen.splats.backfill import sky_backing_gaussians
    from worldgen.splats.init import sky_radius

    pano, depth = _crown_world(64)
    layer = build_layers(pano, depth, LayerConfig(walk_radius=2.0))
    cloud = sky_backing_gaussians(pano, depth, 2.0, layer=layer, factor=2)
    assert len(cloud) > 0
    dist = np.linalg.norm(cloud.means, axis=1)
    assert np.allclose(dist, 1.03 * sky_radius(depth, InitConfig()), rtol=1e-4)
    # Only where the panorama shows a surface, and sky-coloured (carried from the sky beside it).
    x, y = direction_to_pixel((cloud.means / dist[:, None]).astype(np.float64), 128, 64)
    assert not depth.sky[np.clip(y.astype(int), 0, 63), np.clip(x.astype(int), 0, 127)].any()
    assert np.allclose(cloud.colors, [0.55, 0.7, 0.95], atol=1e-3)
    # From the panorama alone: the band behind an outline shrinks with its distance (the whole
    # crown 5 m away, a few cells of the far object 18 m away, nothing behind the ground's horizon).
    own = sky_backing_gaussians(pano, depth, 2.0, factor=2)
    lon = np.degrees(np.arctan2(own.means[:, 0], -own.means[:, 2]))
    lat = np.degrees(np.arcsin(own.means[:, 1] / np.linalg.norm(own.means, axis=1)))
    assert ((np.abs(lon) < 10) & (lat > 5)).sum() > ((lon < -12) & (lon > -40)).sum() > 0
    assert not ((lon < -40) | (lon > 12)).any()
    assert len(cloud) > len(own)  # the layer's hidden sky is backed too
    # A narrower walk radius, no walk radius, no sky dome: less, nothing, nothing.
    assert len(sky_backing_gaussians(pano, depth, 0.5, layer=layer, factor=2)) < len(cloud)
    assert len(sky_backing_gaussians(pano, depth, 0.0, layer=layer)) == 0
    assert len(sky_backing_gaussians(pano, depth, 2.0, config=InitConfig(sky="drop"))) == 0
    with pytest.raises(InputError):
        sky_backing_gaussians(pano, depth, 2.0, push=1.0)
