"""Holes and floaters of a render against true depth; PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.evaluation.views import holes_and_floaters, psnr


def test_counts_holes_and_floaters():
    true = np.full((4, 5), 10.0)
    true[0] = np.inf  # top row: sky
    depth = true.copy()
    alpha = np.ones((4, 5))
    alpha[1, 0] = alpha[1, 1] = 0.2  # two holes on the surface
    depth[2, 2] = 8.0  # 20 % nearer: a floater
    depth[2, 3] = 9.5  # 5 % nearer: within tolerance
    depth[0, 0], depth[0, 1] = 30.0, 60.0  # over the sky: nearer than far (50 m) is a floater
    alpha[0, 4], depth[0, 4] = 0.1, 1.0  # transparent: neither
    r = holes_and_floaters(depth, alpha, true, far=50.0)
    assert r["holes"] == pytest.approx(2 / 20)
    assert r["floaters"] == pytest.approx(2 / 20)


def test_rejects_mismatched_shapes_and_bad_far():
    z = np.ones((3, 3))
    with pytest.raises(InputError):
        holes_and_floaters(z, np.ones((3, 4)), z, far=5.0)
    with pytest.raises(InputError, match="far"):
        holes_and_floaters(z, z, z, far=math.inf)


def test_psnr():
    a = np.zeros((2, 2, 3))
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    mask = np.array([[True, False], [False, False]])
    b = a.copy()
    b[1, 1] = 1.0
    assert psnr(a, b, mask) == math.inf
