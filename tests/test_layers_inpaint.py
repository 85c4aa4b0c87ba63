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
