import math

import numpy as np
import pytest

from worldgen import Camera
from worldgen.geometry import (
    cubemap_to_equirect,
    direction_to_lonlat,
    direction_to_pixel,
    equirect_directions,
    equirect_to_cubemap,
    equirect_to_perspective,
    lonlat_to_direction,
    look_rotation,
    perspective_directions,
    perspective_to_equirect,
    sample_equirect,
)


def _smooth_pano(h):
    d = equirect_directions(h).astype(np.float64)
    return (0.5 + 0.25 * np.sin(2 * d) + 0.2 * d[..., [1, 2, 0]]).astype(np.float32)


def test_feature_convention_axes():
    # The image centre looks along -Z, a quarter turn right along +X, the top row up (+Y).
    assert np.allclose(lonlat_to_direction(0.0, 0.0), [0, 0, -1])
    assert np.allclose(lonlat_to_direction(math.pi / 2, 0.0), [1, 0, 0])
    assert np.allclose(lonlat_to_direction(0.0, math.pi / 2), [0, 1, 0], atol=1e-12)
    x, y = direction_to_pixel(np.array([0.0, 0.0, -1.0]), 8, 4)
    assert (x, y) == (4.0, 2.0)
    x, _ = direction_to_pixel(np.array([0.0, 0.0, 1.0]), 8, 4)
    assert x == 0.0  # the seam is behind the viewer


def test_cardinality_and_unit():
    d = equirect_directions(8)
    assert d.shape == (8, 16, 3) and d.dtype == np.float32
    assert np.allclose(np.linalg.norm(d, axis=-1), 1, atol=1e-6)


def test_feature_lonlat_roundtrip(rng):
    lon = rng.uniform(-math.pi, math.pi, 1000)
    lat = rng.uniform(-1.5, 1.5, 1000)
    lo, la = direction_to_lonlat(lonlat_to_direction(lon, lat))
    assert np.allclose(lo, lon) and np.allclose(la, lat)


def test_feature_sample_wraps_seam():
    img = np.zeros((4, 8), np.float32)
    img[:, 0] = 1.0
    img[:, 7] = 3.0
    # Halfway between the last column centre (7.5) and the first (8.5 == 0.5 wrapped).
    assert sample_equirect(img, np.array([8.0]), np.array([2.0]))[0] == pytest.approx(2.0)


def test_feature_sample_over_pole():
    img = np.zeros((4, 8), np.float32)
    img[0, 0] = 1.0
    img[0, 4] = 3.0
    # Above the top row centre at column 0 the sphere continues at column 4 (lon + pi).
    v = sample_equirect(img, np.array([0.5]), np.array([0.0]))[0]
    assert v == pytest.approx(2.0)


def test_feature_cubemap_roundtrip():
    pano = _smooth_pano(64)
    back = cubemap_to_equirect(equirect_to_cubemap(pano, 64), 64)
    assert np.abs(back - pano).mean() < 2e-3 and np.abs(back - pano).max() < 2e-2


def test_feature_perspective_roundtrip_and_coverage():
    pano = _smooth_pano(64)
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.array([1.0, 0.3, -0.5]))
    cam = Camera.perspective(96, 72, 80.0, m)
    view = equirect_to_perspective(pano, cam)
    assert view.shape == (72, 96, 3)
    back, covered = perspective_to_equirect(view, cam, 64)
    assert 0.05 < covered.mean() < 0.3
    assert np.abs(back[covered] - pano[covered]).mean() < 5e-3


def test_feature_perspective_centre_ray():
    cam = Camera.perspective(4, 4, 90.0)
    d = perspective_directions(cam)
    centre = d[1:3, 1:3].mean(axis=(0, 1))
    assert np.allclose(centre / np.linalg.norm(centre), [0, 0, -1])
    assert d[0, 0, 1] > 0 and d[0, 0, 0] < 0  # top-left pixel looks up and left


def test_exception_perspective_needs_perspective_camera():
    with pytest.raises(Exception, match="perspective"):
        perspective_directions(Camera.equirect(8))
