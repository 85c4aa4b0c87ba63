"""The prior on a street with raised sidewalks: the facades stand on the sidewalk's far edge, not on
the kerb (issue 11: the first change from the road's colour is not the foot of the building)."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.depth.prior import PriorConfig, prior_depth
from worldgen.types import Panorama

H, W = 512, 1024
EYE = 1.6
KERB, FACADE, RAISE = 4.0, 6.0, 0.15  # sidewalk from 4 m to 6 m off the street axis, 15 cm high
STOREYS, BLOCK = 12.0, 60.0  # facades 12 m tall, along 60 m of street either way


def _hash(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic value in [0, 1) per integer cell (i, j): texture fixed to the world."""
    v = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ salt
    return ((v * 2654435761) % 4096) / 4096.0


def _street(kerb_at: float = KERB, h: int = H, facade_at: float = FACADE) -> tuple[np.ndarray, np.ndarray]:
    """A 2h x h equirect (1024x512 by default) of a street along z, ray-cast exactly: asphalt, a raised light grey paved
    sidewalk (20 cm pavers) on each side between ``kerb_at`` and ``facade_at`` off the axis (none where
    they are equal), blue-grey facades with
    light vertical stripes every metre (close in colour to the sidewalk, as concrete over paving
    is), sky beyond. Returns the image [h, 2h, 3] in [0, 1] and the exact Euclidean ray distance
    [h, 2h] (inf = sky)."""
    lat = (np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h)[:, None]
    lon = (2 * np.pi * (np.arange(2 * h) + 0.5) / (2 * h) - np.pi)[None]
    sx, cz, cl = np.sin(lon), -np.cos(lon), np.cos(lat)
    ax = np.maximum(np.abs(sx), 1e-9)
    tan_dn = np.tan(np.maximum(-lat, 1e-9))
    # horizontal distances at which the ray meets each surface
    d_fac = facade_at / ax
    d_road = EYE / tan_dn
    d_walk = (EYE - RAISE) / tan_dn
    d_kerb = kerb_at / ax
    below = lat < 0
    # facade: the ray reaches the plane |x| = facade_at below the roof and within the block
    z_fac = d_fac * np.abs(cz)
    y_fac = d_fac * np.tan(lat)
    fac = (z_fac <= BLOCK) & (y_fac <= STOREYS - EYE) & (y_fac >= RAISE - EYE)
    # sidewalk top: the plane y = RAISE - EYE between the kerb and the facade
    walk = below & (d_walk >= d_kerb) & (d_walk < d_fac) & (d_walk * np.abs(cz) <= BLOCK)
    # kerb face: the plane |x| = KERB between the road and the sidewalk's top
    kerb = below & (d_kerb * tan_dn <= EYE) & (d_kerb * tan_dn >= EYE - RAISE) & (d_kerb * np.abs(cz) <= BLOCK)
    road = below & ~walk & ~kerb & ~fac
    hd = np.where(fac, d_fac, np.where(walk, d_walk, np.where(kerb, d_kerb, d_road)))
    depth = np.where(fac | walk | kerb | road, hd / cl, np.inf)
    # colours, from world positions: textures are foreshortened on the ground as a camera sees them
    x, z = hd * sx, hd * cz
    along = z_fac * np.sign(cz)
    stripe = (np.mod(along, 1.0) < 0.12)[..., None]
    facade = np.where(stripe, [0.82, 0.83, 0.80], [0.51, 0.55, 0.59])
    paver = _hash(np.floor(x / 0.2), np.floor(z / 0.2), 1)[..., None]
    sidewalk = np.array([0.53, 0.51, 0.49]) * (0.92 + 0.16 * paver)
    grain = _hash(np.floor(x / 0.1), np.floor(z / 0.1), 2)[..., None]
    asphalt = np.array([0.32, 0.32, 0.34]) * (0.85 + 0.3 * grain)
    kerb_col = np.array([0.45, 0.44, 0.43]) * (0.9 + 0.2 * (np.mod(along, 0.5) < 0.25))[..., None]
    sky = np.array([0.35, 0.55, 0.9]) - 0.25 * np.sin(np.maximum(lat, 0))[..., None] * np.array([1.0, 0.8, 0.2])
    img = np.where(
        fac[..., None],
        facade,
        np.where(
            walk[..., None], sidewalk, np.where(kerb[..., None], kerb_col, np.where(road[..., None], asphalt, sky))
        ),
    )
    return np.clip(img, 0, 1).astype(np.float32), depth


@pytest.mark.parametrize("h, kerb, facade", [(512, KERB, FACADE), (1024, KERB, FACADE), (512, 5.0, 8.0)])
def test_a_facade_behind_a_sidewalk_stands_on_the_sidewalk_not_on_the_kerb(h, kerb, facade):
    # 1024 and 2048 columns: the texture is judged at one angular scale whatever the size; and a
    # wider street with a wider sidewalk
    img, truth = _street(kerb_at=kerb, h=h, facade_at=facade)
    fac_rows = slice(h // 2 - h // 13, h // 2 - 2)  # to 14° above the horizon: facades in every column
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    near = np.abs(np.sin(2 * np.pi * (np.arange(2 * h) + 0.5) / (2 * h) - np.pi)) > 0.5  # facades within 12 m
    want = truth[fac_rows][:, near]
    assert np.isfinite(want).all()

    def facade_ratio(cfg: PriorConfig):
        d, facts = prior_depth(Panorama(img), EYE, cfg)
        assert facts["scene"] == "outdoor"
        return float(np.median(d.depth[fac_rows][:, near] / want)), d

    # the first change from the road's colour is the kerb: without the band rule (main's prior) the
    # facades stand at the kerb, 4/6 of their distance
    old, _ = facade_ratio(PriorConfig(band_step=0))
    assert old < 0.8, old
    new, d = facade_ratio(PriorConfig())
    assert 0.9 < new < 1.1, new
    # the road and the sidewalk stay ground, the sky sky
    m = np.isfinite(truth) & ~d.sky  # sky is scored apart, below
    rel = np.abs(d.depth[m] - truth[m]) / truth[m]
    w = np.broadcast_to(np.cos(lat)[:, None], truth.shape)[m]
    assert np.average(rel, weights=w) < 0.2
    assert (np.isinf(truth) == d.sky).mean() > 0.98


def test_the_band_rule_leaves_a_facade_on_the_road_alone():
    # no sidewalk: the facade's foot meets the asphalt; nothing above it is a ground band
    img, _ = _street(kerb_at=FACADE)
    a, _ = prior_depth(Panorama(img), EYE, PriorConfig(band_step=0))
    b, _ = prior_depth(Panorama(img), EYE, PriorConfig())
    assert np.array_equal(a.depth, b.depth)


def test_the_band_rule_is_deterministic():
    img, _ = _street()
    a, _ = prior_depth(Panorama(img), EYE)
    b, _ = prior_depth(Panorama(img.copy()), EYE)
    assert a.depth.tobytes() == b.depth.tobytes()
