"""The prior's crowns over the camera: a crown's underside is a ceiling over its trunk."""

from __future__ import annotations

import math

import numpy as np

from worldgen.depth.prior import PriorConfig, _segment_reach, prior_depth

H, W = 128, 256
CROWN = (0.05, 0.3, 0.05)
TRUNK = (0.3, 0.2, 0.1)
FAR = (0.5, 0.5, 0.6)


def _row(e_deg: float) -> int:
    """The grid row seen at elevation e_deg (128 rows)."""
    return int(round((90 - e_deg) / 180 * H - 0.5))


def _crown_scene(rim_deg: float | None = None):
    """A broad crown from 60° down to 20° over 100° of longitude, its trunk (column 128) from the
    horizon up to 20°, far trees below the crown beside the trunk; ``rim_deg``: a lit tier rim (a
    colour step) across the crown at that elevation."""
    feats = np.zeros((H, W, 3), np.float32)
    region = np.zeros((H, W), bool)
    top, bottom, horizon = _row(60), _row(20), H // 2
    region[top:horizon] = True
    feats[top:horizon] = FAR
    feats[top:bottom, 93:164] = CROWN
    feats[bottom:horizon, 126:131] = TRUNK
    if rim_deg is not None:
        feats[_row(rim_deg) - 1 : _row(rim_deg) + 1, 93:164] = (0.6, 0.8, 0.4)
    contact = np.full(W, float(horizon))
    d = np.full(W, 30.0)
    d[126:131] = 6.0
    return feats, region, d, contact


def test_a_crown_over_the_camera_is_a_ceiling_at_its_trunk_top():
    feats, region, d, contact = _crown_scene()
    seg, lift = _segment_reach(feats, region, d, contact, 5.0, 0.05, 45.0, ceiling=(10.0, 45.0, 15.0))
    # the trunk turns into its crown at 20° (the first grid row above the trunk): the underside lies
    # 6 tan(20°) = 2.2 m above the eye, in every column of the crown that its trunk's distance reaches
    # (5 m sideways at 6 m: 48°; the crown's outermost columns, 50° away, keep their own 30 m)
    e_top = math.radians(90 - 180 * _row(20) / H)
    want = 6.0 * math.tan(e_top)
    crown = lift[_row(55) : _row(25), 94:163]
    assert np.allclose(crown, want), (np.nanmin(crown), np.nanmax(crown), want)
    assert (seg[_row(40), 94:163] == 6.0).all() and np.isinf(lift[:, 93]).all()
    # the trunk, the far trees beside it and the sky above hold no ceiling
    assert np.isinf(lift[_row(15) :, :]).all() and np.isinf(lift[: _row(60)]).all()
    assert np.isinf(lift[:, :90]).all() and np.isinf(lift[:, 167:]).all()


def test_a_ceiling_ends_at_a_tier_rim_and_needs_a_near_trunk_of_some_height():
    feats, region, d, contact = _crown_scene(rim_deg=35)
    _, lift = _segment_reach(feats, region, d, contact, 5.0, 0.05, 45.0, ceiling=(10.0, 45.0, 15.0))
    # below the rim the lowest tier's underside; above it the next tier faces the camera
    assert np.isfinite(lift[_row(30), 100:157]).all()
    assert np.isinf(lift[_row(50) : _row(38), :]).all()
    feats, region, d, contact = _crown_scene()
    # a trunk 20 m away is seen from the side (crown_near 15 m); a trunk top below 25° holds none
    for d_trunk, cfg in ((20.0, (10.0, 45.0, 15.0)), (6.0, (25.0, 45.0, 15.0))):
        d2 = d.copy()
        d2[126:131] = d_trunk
        _, lift = _segment_reach(feats, region, d2, contact, 5.0, 0.05, 45.0, ceiling=cfg)
        assert np.isinf(lift).all()


def test_crowns_over_the_camera_are_ceilings_in_a_procedural_forest():
    # forest seed 4: a broad crown 6 m away hangs over the camera, its underside 2.25 m above the eye;
    # folds at its trunk put it 30-200 % too far from 30° up (AbsRel at 1024 px 0.323 -> 0.235, at
    # this size 0.388 -> 0.308)
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt("a forest", 4)
    pano, gt, _ = synthesize(spec, 1.6, ProceduralConfig(width=512, previews=False))
    h = gt.depth.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    wgt = np.broadcast_to(np.cos(lat)[:, None], gt.depth.shape)
    err = {}
    for near in (0.0, 15.0):
        depth, _ = prior_depth(pano, 1.6, PriorConfig(crown_near=near))
        m = np.isfinite(gt.depth) & np.isfinite(depth.depth)
        rel = np.abs(depth.depth[m] - gt.depth[m]) / gt.depth[m]
        err[near] = float(np.average(rel, weights=wgt[m]))
    assert err[15.0] < err[0.0] - 0.05, err
