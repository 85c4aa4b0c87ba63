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
