"""The weight-free prior: scene decision, sky, accuracy against procedural worlds of exact depth."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from worldgen.depth.prior import PriorConfig, prior_depth
from worldgen.errors import InputError
from worldgen.stages.depth import layout_depth


@functools.cache
def _world(prompt: str, width: int = 256):
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt(prompt, 0)
    return synthesize(spec, 1.6, ProceduralConfig(width=width, antialias=False, previews=False))


def _absrel(pred, gt):
    h = gt.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    w = np.broadcast_to(np.cos(lat)[:, None], gt.shape)
    m = np.isfinite(gt) & np.isfinite(pred)
    return float(np.average(np.abs(pred[m] - gt[m]) / gt[m], weights=w[m]))


def test_interior_is_a_room_without_sky():
    pano, gt, _ = _world("a cozy living room interior")
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "indoor" and not depth.sky.any() and np.isfinite(depth.depth).all()
    assert len(facts["room_walls_m"]) == 4 and facts["ceiling_above_eye_m"] > 0.3
    err = _absrel(depth.depth, gt.depth)
    assert err < 0.35 and err < _absrel(layout_depth(pano, 1.6).depth, gt.depth) / 5
    # the floor under the camera is at the eye height
    assert depth.depth[-1].mean() == pytest.approx(1.6, rel=0.01)


def test_outdoor_ground_folds_and_sky():
    pano, gt, _ = _world("a meadow")
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "outdoor" and facts["scene_from"] == "auto"
    gsky = gt.sky
    iou = (depth.sky & gsky).sum() / (depth.sky | gsky).sum()
    assert iou > 0.9 and np.isposinf(depth.depth[depth.sky]).all()
    assert _absrel(depth.depth, gt.depth) < 0.15


def test_override_determinism_and_errors():
    pano, _, _ = _world("a meadow")
    d1, _ = prior_depth(pano, 1.6)
    d2, _ = prior_depth(pano, 1.6)
    assert np.array_equal(d1.depth, d2.depth) and np.array_equal(d1.sky, d2.sky)
    forced, facts = prior_depth(pano, 1.6, PriorConfig(scene="indoor"))
    assert facts["scene"] == "indoor" and facts["scene_from"] == "indoor" and not forced.sky.any()
    with pytest.raises(InputError, match="scene"):
        prior_depth(pano, 1.6, PriorConfig(scene="cave"))


def test_prior_is_the_default_without_depth_or_model(tmp_path):
    from worldgen.cli.main import main
    from worldgen.io import encode_png

    pano, _, _ = _world("a cozy living room interior", 128)
    p = tmp_path / "room.png"
    p.write_bytes(encode_png(pano.to_uint8()))
    out = tmp_path / "run"
    assert main(["generate", "--panorama", str(p), "--until", "depth", "-q", "-o", str(out)]) == 0
    entry = json.loads((out / "manifest.json").read_text())["stages"]["depth"]
    assert entry["backend"] == "prior" and entry["report"]["scene"] == "indoor"
    assert (
        main(
            ["generate", "--panorama", str(p), "--until", "depth", "-q", "-o", str(out), "--set", "depth.scene=outdoor"]
        )
        == 0
    )
    entry = json.loads((out / "manifest.json").read_text())["stages"]["depth"]
    assert entry["report"]["scene"] == "outdoor" and entry["report"]["scene_from"] == "outdoor"
