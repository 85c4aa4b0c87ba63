"""Engine presets seen as a viewer sees them: every visible node drawn, sky inside the far plane.

The renders use the independent GLB viewer of ``_engine_scenes`` (its own GLB parser and ray
caster), on worlds the procedural and sheet stages build at 256 x 128.
"""

from __future__ import annotations

import numpy as np
import pytest
from _engine_scenes import drawn_primitives, psnr, read_glb, render, scene_primitives, visual_parts, world

from worldgen.exporters import ENGINES, export_glb, resolve
from worldgen.exporters.placement import fit_far_plane, fold_radius
from worldgen.types import Mesh, MeshScene

GLB_ENGINES = [e for e, p in ENGINES.items() if "glb" in p.formats] + ["omniverse"]


@pytest.fixture(scope="module")
def harbour():
    return world("a harbour with wooden boats at dawn")  # world reaches ~3.3 km, sky dome ~4.9 km


@pytest.fixture(scope="module")
def room():
    return world("a small room")


def _named(doc, names):
    """Same GLB, only the nodes called ``names`` (the world-and-sky render of the issue)."""
    keep = [i for i in doc["scenes"][0]["nodes"] if doc["nodes"][i]["name"] in names]
    return {**doc, "scenes": [{"nodes": keep}]}


@pytest.mark.parametrize("engine", GLB_ENGINES)
@pytest.mark.parametrize("which", ["harbour", "room"])
def test_every_visible_node_drawn_matches_world_and_sky(engine, which, request):
    pano, scene = request.getfixturevalue(which)
    doc, blob = read_glb(export_glb(scene, resolve(engine)))
    everything, _ = render(drawn_primitives(doc, blob))
    world_sky, _ = render(drawn_primitives(_named(doc, {"world", "sky"}), blob))
    assert psnr(everything, pano) >= psnr(world_sky, pano) - 1.0
    # The check can fail: drawing the meshes the physics shapes reference costs > 10 dB.
    shapes = [s["trimesh"]["mesh"] for s in doc.get("extensions", {}).get("OMI_physics_shape", {}).get("shapes", [])]
    if shapes and engine != "unreal":  # unreal's UCX_ mesh is on a (hidden) node: covered above
        with_collision, _ = render(drawn_primitives(doc, blob, tuple(shapes)))
        assert psnr(with_collision, pano) < psnr(world_sky, pano) - 10.0


@pytest.mark.parametrize("engine", GLB_ENGINES)
def test_sky_and_world_inside_the_far_plane_and_unchanged_from_the_capture_point(engine, harbour):
    pano, scene = harbour
    cfg = resolve(engine, texture_format="png")
    doc, blob = read_glb(export_glb(scene, cfg))
    img, t = render(drawn_primitives(doc, blob))
    ref, _ = render(scene_primitives(scene))
    assert psnr(img, pano) >= psnr(ref, pano) - 0.5  # folding keeps every point on its ray
    _, t_ref = render(scene_primitives(scene))
    # No new hole where the far world or the sky was (0.1 % slack: ray-edge ties at seams).
    assert (~np.isfinite(t)).sum() <= (~np.isfinite(t_ref)).sum() + t.size // 1000
    t = t[np.isfinite(t)]
    if cfg.far_plane:
        assert t.max() < 0.95 * cfg.far_plane  # the default camera sees the sky: nothing clipped
        sky = next(n for n in doc["nodes"] if n["name"] == "sky")
        pos = drawn_primitives({**doc, "scenes": [{"nodes": [doc["nodes"].index(sky)]}]}, blob)[0]["positions"]
        np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 0.9 * cfg.far_plane, rtol=1e-5)
    else:
        assert t.max() > 3000  # no limit: the world is written as built


def test_fold_map_is_identity_near_monotone_and_bounded():
    d = np.linspace(0, 10_000, 100_001)
    f, slope = fold_radius(d, 50.0, 80.0)
    np.testing.assert_array_equal(f[d <= 50], d[d <= 50])
    assert (np.diff(f) > 0).all() and f.max() < 80.0 and (slope > 0).all() and (slope <= 1).all()
    near = (d > 50) & (d < 50.01)
    np.testing.assert_allclose(slope[near], 1.0, atol=1e-3)  # continuous slope at r0


def test_fit_keeps_small_worlds_and_folds_normals_consistently():
    v = np.array([[0, 0, -5], [1, 0, -5], [0, 1, -5]], np.float32)
    small = MeshScene({"world": Mesh(v, np.array([[0, 1, 2]]), np.tile([[0, 0, 1]], (3, 1)))})
    out, rep = fit_far_plane(small, 100.0)
    assert out is small and not rep["folded"]
    far = MeshScene({"world": Mesh(v * 100, np.array([[0, 1, 2]]), np.tile([[0, 0, 1]], (3, 1)))})
    out, rep = fit_far_plane(far, 100.0)
    w = out["world"]
    assert rep["folded"] and np.linalg.norm(w.vertices, axis=1).max() < 80.0
    # Every vertex stays on its ray from the capture point.
    np.testing.assert_allclose(
        w.vertices / np.linalg.norm(w.vertices, axis=1, keepdims=True),
        v / np.linalg.norm(v, axis=1, keepdims=True),
        atol=1e-6,
    )
    # The folded normal is the true normal of the folded triangle (here, facing the viewer: +Z).
    fn = np.cross(w.vertices[1] - w.vertices[0], w.vertices[2] - w.vertices[0])
    fn /= np.linalg.norm(fn)
    assert (w.normals @ fn > 0.9).all()


def test_far_plane_setting_is_checked():
    from worldgen.errors import InputError

    with pytest.raises(InputError, match="far_plane"):
        resolve("default", far_plane=-5.0)
    assert resolve("blender").far_plane == 100.0 and resolve("unreal").far_plane == 0.0


def test_fit_cloud_keeps_rays_and_angular_size():
    from worldgen.exporters.placement import fit_cloud
    from worldgen.types import GaussianCloud

    rng = np.random.default_rng(1)
    dirs = rng.normal(size=(50, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dist = np.r_[rng.uniform(1, 40, 25), rng.uniform(500, 5000, 25)]
    q = np.tile([1.0, 0, 0, 0], (50, 1))
    cloud = GaussianCloud(dirs * dist[:, None], q, np.full((50, 3), -2.0), np.zeros(50), np.zeros((50, 1, 3)))
    same, rep = fit_cloud(cloud, 0.0)
    assert same is cloud and not rep["folded"]
    out, rep = fit_cloud(cloud, 100.0)
    d2 = np.linalg.norm(out.means, axis=1)
    assert rep["folded"] and d2.max() < 80.0
    np.testing.assert_allclose(out.means / d2[:, None], dirs, atol=1e-5)  # on their rays
    np.testing.assert_allclose(d2[dist < 50], dist[dist < 50], rtol=1e-6)  # near splats untouched
    np.testing.assert_allclose(np.exp(out.log_scales[:, 0]) / d2, np.exp(-2.0) / dist, rtol=1e-4)  # angular size
    assert (np.argsort(d2) == np.argsort(dist)).all()  # order along rays kept


@pytest.mark.parametrize("engine", ["default", "unreal", "blender", "omniverse"])
def test_usd_every_renderable_prim_drawn_matches_world_and_sky(engine, harbour, tmp_path):
    from _engine_scenes import usd_drawn_primitives

    from worldgen.exporters import export_usdz

    pano, scene = harbour
    p = tmp_path / "world.usdz"
    p.write_bytes(export_usdz(scene, resolve(engine, texture_format="png")))  # lossless: compare with the scene
    prims = usd_drawn_primitives(str(p))
    assert sorted({q["name"] for q in prims}) == visual_parts(scene)  # the collision prim is not drawn
    everything, _ = render(prims)
    ref, _ = render(scene_primitives(scene))
    assert psnr(everything, pano) >= psnr(ref, pano) - 0.5  # folded or not, the same view
