"""Polar caps: streaks averaged out, smooth content kept, the equatorial band untouched."""

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.geometry import equirect_directions
from worldgen.panorama.poles import fix_poles, pole_spread


def test_streaks_at_the_pole_are_averaged(rng):
    h = 64
    img = rng.random((h, 2 * h, 3)).astype(np.float32)  # every column differs: a fan of streaks at the pole
    out = fix_poles(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert pole_spread(out) < 0.15 * pole_spread(img)
    # rows below 60° latitude are exactly as painted
    lat = 90 - 180 * (np.arange(h) + 0.5) / h
    band = np.abs(lat) < 60
    assert np.array_equal(out[band], img[band])


def test_smooth_content_is_not_smeared():
    h = 64
    d = equirect_directions(h)
    img = (0.5 + 0.45 * d * np.array([1.0, -0.7, 0.9])).astype(np.float32)  # a smooth field on the sphere
    out = fix_poles(img)
    assert np.abs(out - img).max() < 2e-3


def test_options_are_checked():
    with pytest.raises(InputError, match="2:1"):
        fix_poles(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="pole blend latitudes"):
        fix_poles(np.zeros((8, 16, 3), np.float32), start_deg=80, full_deg=70)
