"""Independent geometry measures on analytic ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.evaluation.geometry import (
    analytic_scene,
    discontinuity_edges,
    evaluate_mesh,
    psnr,
    render_from_origin,
    render_view,
    scene_radius,
    surface_accuracy,
    view_measures,
)
from worldgen.geometry.equirect import equirect_directions, look_rotation
from worldgen.mesh.sheet import SheetConfig, build_sheet
from worldgen.types import Camera, DepthMap, Mesh, MeshScene

H = 64


@pytest.fixture(scope="module")
def room():
    return analytic_scene("room", H)


def test_analytic_depth_is_exact(room):
    pano, depth, _, _ = room
    dirs = equirect_directions(H)
    # Straight ahead (-Z) is the back wall at z = -4; straight down is the floor 1.6 m below.
    p = dirs * depth.depth[..., None]
    ahead = np.abs(dirs[..., 2] + 1) < 1e-3
    assert np.allclose(p[ahead][:, 2], -4.0, atol=1e-4)
    assert np.allclose(p[-1, :, 1], -1.6, atol=1e-4)
    assert not depth.sky.any()
    out = analytic_scene("outdoor", H)[1]
    assert out.sky[0].all() and out.valid[-1].all()


def test_ground_truth_scores_perfectly(room):
    _, depth, gv, gf = room
    acc = surface_accuracy(Mesh(gv, gf), gv, gf, depth, n_samples=5000)
    assert acc["fscore"] == pytest.approx(1.0, abs=2e-3)
    assert acc["chamfer_pct"] < 0.05
    assert acc["radius_m"] == pytest.approx(scene_radius(depth))


def test_shifted_mesh_scores_badly(room):
    _, depth, gv, gf = room
    tau = 0.01 * scene_radius(depth)
    acc = surface_accuracy(Mesh(gv * 1.0 + np.array([3 * tau, 3 * tau, 3 * tau]), gf), gv, gf, depth, n_samples=5000)
    assert acc["fscore"] < 0.5
    assert acc["chamfer_pct"] > 1.0


def test_flipped_winding_is_caught(room):
    pano, depth, gv, gf = room
    sc = build_sheet(pano, depth, SheetConfig(max_triangles=4000, collision_triangles=0))
    w = sc["world"]
    assert view_measures(w, depth)["front_face_share"] > 0.99
    flipped = Mesh(w.vertices, w.faces[:, ::-1])
    assert view_measures(flipped, depth)["front_face_share"] < 0.01


def test_holes_are_counted(room):
    pano, depth, gv, gf = room
    w = build_sheet(pano, depth, SheetConfig(max_triangles=0, collision_triangles=0))["world"]
    c = w.vertices[w.faces].mean(1)
    lon = np.arctan2(c[:, 0], -c[:, 2])
    keep = np.abs(np.abs(lon) - math.pi) > 0.1  # cut a wedge out at the seam
    vm = view_measures(Mesh(w.vertices, w.faces[keep]), depth)
    assert vm["ray_coverage"] < 0.99 and vm["missed_seam_rays"] > 0


def test_bridging_edge_definition():
    # Two vertices one pixel apart in direction, depths 1 m and 2 m: a bridge; same depth: none.
    W = 256
    a = np.array([0.0, 0.0, -1.0])
    ang = 2 * math.pi / W
    b = np.array([math.sin(ang), 0.0, -math.cos(ang)])
    far = Mesh(np.stack([a, 2 * b, a + [0, 0.01, 0]]), np.array([[0, 1, 2]]))
    near = Mesh(np.stack([a, b, a + [0, 0.01, 0]]), np.array([[0, 1, 2]]))
    assert discontinuity_edges(far, W)["raw"] >= 1
    assert discontinuity_edges(near, W)["raw"] == 0


def test_render_reproduces_panorama(room):
    pano, depth, _, _ = room
    sc = build_sheet(pano, depth, SheetConfig(max_triangles=0, collision_triangles=0))
    img, hit = render_from_origin(sc, H)
    assert hit.all()
    assert psnr(img, pano.image) > 40.0


def test_render_from_origin_culls_back_faces_as_an_engine_does():
    # A red triangle facing away from the origin in front of a green one facing it: an engine
    # draws the exported single-sided materials with back faces culled, so the green one shows.
    tri = np.array([[-1.0, -1.0, -2.0], [1.0, -1.0, -2.0], [0.0, 1.0, -2.0]])  # CCW seen from +z: faces the origin
    green = Mesh(tri * 2, np.array([[0, 1, 2]]), vertex_colors=np.tile([[0.0, 1.0, 0.0]], (3, 1)))
    red = Mesh(tri, np.array([[0, 2, 1]]), vertex_colors=np.tile([[1.0, 0.0, 0.0]], (3, 1)))
    sc = MeshScene({"world": red, "background": green})
    parts = ("world", "background")
    img, hit = render_from_origin(sc, 32, parts)
    ahead = (16, 32)  # the pixel looking down -z
    assert hit[ahead] and img[ahead].tolist() == [0.0, 1.0, 0.0]
    img, _ = render_from_origin(sc, 32, parts, cull_back_faces=False)
    assert img[ahead].tolist() == [1.0, 0.0, 0.0]


def test_render_view_marks_holes_and_back_faces(room):
    pano, depth, _, _ = room
    sc = build_sheet(pano, depth, SheetConfig(max_triangles=4000, collision_triangles=0))
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.array([0.0, 0.0, -1.0]))
    cam = Camera.perspective(32, 24, 60.0, m)
    img = render_view(sc, cam)
    assert img.shape == (24, 32, 3)
    assert not np.all(img == np.array([1.0, 0.0, 1.0], np.float32), axis=-1).any()
    # Outside the room, looking back in, the walls are seen from behind: tinted.
    m[:3, 3] = (0.0, 0.0, -10.0)
    m[:3, :3] = look_rotation(np.array([0.0, 0.0, 1.0]))
    img2 = render_view(sc, Camera.perspective(32, 24, 30.0, m))
    assert (img2[..., 0] > 0.5).mean() > 0.5


def test_psnr_values():
    a = np.zeros((4, 4, 3))
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(20.0)


def test_errors():
    with pytest.raises(InputError):
        analytic_scene("castle", 16)
    sky = DepthMap(np.full((4, 8), np.inf, np.float32), np.ones((4, 8), bool))
    with pytest.raises(InputError):
        scene_radius(sky)
    with pytest.raises(InputError):
        render_from_origin(MeshScene({}), 8)


def test_world_or_sky_coverage():
    pano, depth, _, _ = analytic_scene("outdoor", 64)
    sc = build_sheet(pano, depth, SheetConfig(max_triangles=0, collision_triangles=0))
    vm = view_measures(sc["world"], depth, sc["sky"])
    assert vm["missed_rays"] == 0 and vm["missed_rays_world_or_sky"] == 0
    tiny = Mesh(np.array([[0, 50, -1], [1, 50, -1], [0, 50, 0]], np.float32), np.array([[0, 1, 2]], np.int32))
    assert view_measures(sc["world"], depth, tiny)["missed_rays_world_or_sky"] > 0
    assert "missed_rays_world_or_sky" not in view_measures(sc["world"], depth)


def test_evaluate_mesh_with_and_without_sky():
    # The geometry bench's one call: it broke unseen once (MeshScene has no dict .get).
    pano, depth, gv, gf = analytic_scene("outdoor", 64)
    sc = build_sheet(pano, depth, SheetConfig(max_triangles=0, collision_triangles=0))
    q = evaluate_mesh(sc, pano, gv, gf, depth, n_samples=2000, max_rays=2000)
    assert q["fscore"] > 0.9 and q["missed_rays_world_or_sky"] == 0 and q["psnr_db"] > 20
    q = evaluate_mesh(MeshScene({"world": sc["world"]}), pano, gv, gf, depth, n_samples=2000, max_rays=2000)
    assert "missed_rays_world_or_sky" not in q


def test_caster_composes_meshes_by_depth_with_retry():
    from worldgen.evaluation.geometry import _Caster

    def quad(z, half):
        v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], np.float64)
        return v, np.array([[0, 1, 2], [0, 2, 3]], np.int32)

    near, far = quad(-2.0, 0.5), quad(-5.0, 5.0)
    dirs = np.array([[0.0, 0.0, -1.0], [0.6, 0.0, -0.8], [0.1, 0.1, -1.0]])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for order in ((near, far), (far, near)):
        one = _Caster(list(order)).cast(np.zeros(3), dirs)
        each = _Caster(list(order)).cast(np.zeros(3), dirs, retry=True)
        # Same first hits and ids as one scene: the near quad where it covers, else the far one.
        assert np.allclose(one["t_hit"], each["t_hit"], rtol=1e-5)
        assert (one["geometry_ids"] == each["geometry_ids"]).all()
    ids = _Caster([near, far]).cast(np.zeros(3), dirs, retry=True)["geometry_ids"]
    assert ids.tolist() == [0, 1, 0]
