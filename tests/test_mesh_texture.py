"""Equirect UVs at the seam and the poles, texture sampling and island dilation."""

from __future__ import annotations

import math

import numpy as np

from worldgen.mesh.texture import dilate_islands, equirect_uvs, panorama_texture, sample_texture
from worldgen.types import Panorama


def _dir(lon, lat):
    return np.array([math.cos(lat) * math.sin(lon), math.sin(lat), -math.cos(lat) * math.cos(lon)])


def test_seam_triangle_gets_copies_on_the_far_side():
    # Corners just left and right of the seam (lon = +-pi), behind the viewer.
    v = np.stack([_dir(math.pi - 0.05, 0.0), _dir(-math.pi + 0.05, 0.0), _dir(math.pi - 0.05, 0.1)]) * 3
    f = np.array([[0, 2, 1]])
    v2, f2, uv, _ = equirect_uvs(v, f)
    u = uv[f2[0], 0]
    assert np.ptp(u) < 0.1  # no wrap across the texture
    assert u.max() <= 1.0 and len(v2) == 4
    assert np.allclose(v2[f2[0]], v[f[0]])


def test_pole_corner_takes_mean_u():
    v = np.stack([[0.0, 2.0, 0.0], _dir(0.2, 1.4) * 2, _dir(0.4, 1.4) * 2])
    f = np.array([[0, 1, 2]])
    v2, f2, uv, _ = equirect_uvs(v, f)
    u_pole = uv[f2[0, 0], 0]
    assert u_pole == np.float32(np.mean(uv[f2[0, 1:], 0]))
    assert uv[f2[0, 0], 1] == 0.0


def test_uv_matches_pixel_centres():
    H = 8
    x, y = 3.5, 2.5  # centre of pixel (col 3, row 2)
    lon = 2 * math.pi * x / (2 * H) - math.pi
    lat = math.pi / 2 - math.pi * y / H
    v = np.stack([_dir(lon, lat), _dir(lon + 0.1, lat), _dir(lon, lat - 0.1)])
    _, _, uv, _ = equirect_uvs(v, np.array([[0, 2, 1]]))
    assert np.allclose(uv[0], [x / (2 * H), y / H], atol=1e-6)


def test_sample_texture_hits_texel_centres():
    tex = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    uv = np.array([[(2 + 0.5) / 8, (1 + 0.5) / 4]])
    assert np.allclose(sample_texture(tex, uv)[0], tex[1, 2] / 255.0)


def test_panorama_texture_downsizes():
    pano = Panorama(np.random.default_rng(0).random((64, 128, 3)).astype(np.float32))
    assert panorama_texture(pano, 4096).shape == (64, 128, 3)
    assert panorama_texture(pano, 64).shape == (32, 64, 3)


def test_dilation_fills_rings():
    tex = np.zeros((5, 5, 3), np.uint8)
    tex[2, 2] = 200
    filled = np.zeros((5, 5), bool)
    filled[2, 2] = True
    out = dilate_islands(tex, filled, 1)
    assert (out[1:4, 1:4] == 200).all() and out[0, 0].sum() == 0
