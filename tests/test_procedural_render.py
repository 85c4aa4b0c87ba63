"""Rendering procedural scenes: seams, depth/semantics agreement, determinism, re-rendering."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.geometry import equirect_to_perspective, look_rotation
from worldgen.procedural import (
    ProceduralConfig,
    build_scene,
    parse_prompt,
    render_panorama,
    render_view,
    scene_to_mesh,
    synthesize,
)
from worldgen.procedural import render as R
from worldgen.types import SEMANTIC_CLASSES, Camera

PROMPTS = [
    "a pine forest by a lake",
    "a city street at night",
    "a cozy wooden cabin interior",
    "snowy mountains at sunset",
    "a desert canyon at noon",
]


@pytest.fixture(scope="module")
def scenes():
    return {p: build_scene(parse_prompt(p, 3)[0], 1.6) for p in PROMPTS}


@pytest.fixture(scope="module")
def panos(scenes):
    return {p: render_panorama(s, 64) for p, s in scenes.items()}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_panorama_contract(panos, prompt) -> None:
    rgb, depth, ids = panos[prompt]
    assert rgb.shape == (64, 128, 3) and rgb.dtype == np.float32
    assert depth.shape == (64, 128) and ids.dtype == np.uint8
    assert rgb.min() >= 0 and rgb.max() <= 1
    sky = np.isposinf(depth)
    assert np.array_equal(sky, ids == 0)  # semantics agree with depth
    assert np.isfinite(depth[~sky]).all() and (depth[~sky] > 0).all()
    assert not np.isnan(depth).any()
    # The ground straight below the camera is eye_height away.
    assert abs(float(depth[-1].mean()) - 1.6) < 0.05


@pytest.mark.parametrize("prompt", PROMPTS)
def test_seamless(panos, prompt) -> None:
    """Left and right columns continue each other like any two neighbouring columns."""
    rgb, depth, _ = panos[prompt]
    seam = np.abs(rgb[:, 0] - rgb[:, -1]).mean()
    inner = np.abs(np.diff(rgb, axis=1)).mean(axis=(0, 2))
    assert seam <= np.percentile(inner, 90) + 0.02


def test_determinism() -> None:
    spec, _ = parse_prompt("a pine forest by a lake", 7)
    cfg = ProceduralConfig(width=96)
    a = synthesize(spec, 1.6, cfg)
    b = synthesize(spec, 1.6, cfg)
    assert a[0].image.tobytes() == b[0].image.tobytes()
    assert a[1].depth.tobytes() == b[1].depth.tobytes() and a[2].ids.tobytes() == b[2].ids.tobytes()
    other, _ = parse_prompt("a pine forest by a lake", 8)
    c = synthesize(other, 1.6, cfg)
    assert c[1].depth.tobytes() != a[1].depth.tobytes()


@pytest.mark.parametrize(
    "prompt", ["a pine forest by a lake", "a city street at night", "a cozy wooden cabin interior"]
)
def test_perspective_matches_panorama_crop(scenes, prompt) -> None:
    """Ground truth re-rendering: a view from the capture point equals the panorama's crop."""
    scene = scenes[prompt]
    _, pd, pids = render_panorama(scene, 256, antialias=False)
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.array([0.3, -0.25, -1.0]))
    cam = Camera.perspective(48, 40, 70.0, m)
    rgb, depth, ids = render_view(scene, cam, antialias=False)
    crop_d = equirect_to_perspective(pd, cam, "nearest")
    crop_i = equirect_to_perspective(pids, cam, "nearest")
    assert rgb.shape == (40, 48, 3)
    agree = ids == crop_i
    assert agree.mean() > 0.85
    both = agree & np.isfinite(depth) & np.isfinite(crop_d)
    rel = np.abs(depth[both] - crop_d[both]) / crop_d[both]
    assert np.median(rel) < 0.02


def test_view_from_elsewhere_sees_terrain_below(scenes) -> None:
    scene = scenes["a pine forest by a lake"]
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.array([0.0, -1.0, -0.01]))
    m[:3, 3] = [3.0, 20.0, 4.0]
    rgb, depth, ids = render_view(scene, Camera.perspective(16, 16, 40.0, m), antialias=False)
    ground = scene.terrain.height(np.array(3.0), np.array(4.0))
    # The centre ray points straight down: depth is the height above whatever is below.
    assert depth[8, 8] <= 20.0 - ground + 1e-3
    assert (ids != 0).all()


def test_terrain_trace_matches_brute_force(scenes) -> None:
    hf = scenes["snowy mountains at sunset"].terrain
    rng = np.random.default_rng(0)
    d = rng.normal(size=(40, 3))
    d[:, 1] = -np.abs(d[:, 1]) * 0.2
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    t = R._trace_terrain(hf, np.zeros(3), d, np.full(40, 1e-4), np.full(40, np.inf))
    ts = np.linspace(0, 3000, 300001)
    for i in range(40):
        p = d[i][None] * ts[:, None]
        under = np.nonzero(p[:, 1] < hf.height(p[:, 0], p[:, 2]))[0]
        ref = ts[under[0]] if len(under) else np.inf
        if np.isfinite(ref):
            assert abs(t[i] - ref) < 0.02
        else:
            assert not t[i] < 3000


def test_column_profiles_match_quadtree(scenes) -> None:
    # Primary panorama rays use per-column terrain profiles; they must find the same surface
    # points as the general quadtree walk, including from a centre off the origin.
    hf = scenes["snowy mountains at sunset"].terrain
    for origin in ((0.0, 0.0, 0.0), (37.0, 25.0, -81.0)):
        frame = R._Frame("equirect", 48, 96, np.array(origin), np.eye(3))
        yy, xx = np.meshgrid(np.arange(48) + 0.5, np.arange(96) + 0.5, indexing="ij")
        o, d = frame.rays(xx.ravel(), yy.ravel())
        tq = R._trace_terrain(hf, o, np.ascontiguousarray(d), np.full(d.shape[0], 1e-4), np.full(d.shape[0], np.inf))
        tc = R._column_hits(R._column_profiles(hf, frame), yy.ravel(), np.arange(48 * 96) % 96, frame)
        assert np.array_equal(np.isfinite(tq), np.isfinite(tc))
        hit = np.isfinite(tq)
        assert hit.sum() > 1000
        assert np.max(np.abs(tc[hit] - tq[hit]) / tq[hit]) < 1e-8


def test_pairs_dense_and_sparse_agree() -> None:
    # Candidate pairs for a sparse subset of pixels are exactly the dense pairs restricted to it.
    frame = R._Frame("equirect", 16, 32, np.zeros(3), np.eye(3))
    rng = np.random.default_rng(1)
    r0 = rng.integers(0, 16, 20)
    c0 = rng.integers(0, 32, 20)
    rects = (
        np.arange(20),
        r0,
        np.minimum(r0 + rng.integers(0, 6, 20), 16),
        c0,
        np.minimum(c0 + rng.integers(0, 9, 20), 32),
    )
    dense = np.arange(16 * 32)
    pairs = {(int(dense[a]), int(b)) for ray, q in R._pairs(frame, *rects, dense) for a, b in zip(ray, q)}
    assert len(pairs) == sum(int((r1 - r) * (c1 - c)) for _, r, r1, c, c1 in zip(*rects))
    sparse = np.repeat(np.sort(rng.choice(16 * 32, 60, replace=False)), 2)  # two rays per pixel
    got = sorted((int(sparse[a]), int(b)) for ray, q in R._pairs(frame, *rects, sparse) for a, b in zip(ray, q))
    want = sorted(p for p in pairs if p[0] in set(sparse.tolist()) for _ in range(2))
    assert got == want


def test_coast_shows_the_sea() -> None:
    # From 1.6 m the sea must fill part of the view ahead, not a one-pixel band at the horizon.
    scene = build_scene(parse_prompt("a beach by the sea at noon", 0)[0], 1.6)
    _, depth, ids = render_panorama(scene, 64, antialias=False)
    ahead = ids[32:, 40:88]  # lower half, +-67 degrees around -Z
    water = SEMANTIC_CLASSES.index("water")
    assert (ahead == water).mean() > 0.09  # the sea down to ~9 degrees below the horizon or more
    assert (ids[32:] == SEMANTIC_CLASSES.index("terrain")).any()


def test_primitives_against_reference() -> None:
    from worldgen.procedural import scene as S

    spec, _ = parse_prompt("a village", 0)
    b = S._Builder(spec, 1.6)
    m = b.mat("x", (100, 100, 100), "object")
    b.ellipsoid((0, 0, -10), (1, 2, 1), m)
    b.cylinder((3, -1, -10), 1.0, 2.0, m)
    b.cone((-3, -1, -10), 1.0, 2.0, m)
    b.box((0, 5, -10), (1, 1, 1), m, yaw=0.3)
    p = b.primitives()
    d = np.array([[0, 0, -1], [0.3, 0, -1], [-0.3, 0, -1], [0, 0.5, -1]], float)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    t = R._intersect(p, np.arange(4), np.zeros((4, 3)), d, np.full(4, 1e-6))
    pos = d * t[:, None]
    assert abs(t[0] - 9.0) < 1e-9
    # Cylinder: radius 1 around (3, -10) in xz.
    assert abs(np.hypot(pos[1, 0] - 3, pos[1, 2] + 10) - 1.0) < 1e-9
    # Cone: radius at height y is (1 - (y + 1) / 2).
    rho = np.hypot(pos[2, 0] + 3, pos[2, 2] + 10)
    assert abs(rho - (1 - (pos[2, 1] + 1) / 2)) < 1e-9
    # Box: the hit lies on the box surface.
    local = (pos[3] - [0, 5, -10]) @ S._yaw(0.3)
    assert abs(np.abs(local).max() - 1.0) < 1e-9


def test_mesh_export(scenes) -> None:
    ms = scene_to_mesh(scenes["a pine forest by a lake"], terrain_radius=60.0, segments=8)
    assert "terrain" in ms and "objects" in ms and "water" in ms
    t = ms["terrain"]
    # The exported terrain is the rendered surface: its vertices are the heightfield's.
    hf = scenes["a pine forest by a lake"].terrain
    v = t.vertices[::97]
    assert np.allclose(v[:, 1], hf.height(v[:, 0].astype(float), v[:, 2].astype(float)), atol=1e-3)
    assert (t.face_normals[:, 1] > 0).all()
    room = scene_to_mesh(scenes["a cozy wooden cabin interior"])
    assert "room" in room


def test_backend_registered(tmp_path) -> None:
    from worldgen.registry import Request, StageContext, get_backend

    b = get_backend("panorama", "procedural")
    cfg = b.make_config("fast", {"width": 64})
    res = b.run(StageContext("panorama", {}, Request(prompt="a desert canyon at noon", seed=1), cfg))
    assert set(res.artifacts) == {"panorama", "given_depth", "semantics", "scene_spec"}
    assert res.artifacts["panorama"].width == 64
    assert res.artifacts["scene_spec"]["setting"] == "canyon"
    spec_path = tmp_path / "s.json"
    import json

    spec_path.write_text(json.dumps(dict(res.artifacts["scene_spec"], time_of_day="night")))
    res2 = b.run(StageContext("panorama", {}, Request(spec=str(spec_path)), cfg))
    assert res2.artifacts["scene_spec"]["time_of_day"] == "night"
    assert res2.artifacts["panorama"].image.mean() < res.artifacts["panorama"].image.mean()
