"""TSDF extractor on a small analytic room (exact depth)."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.evaluation.geometry import analytic_scene, psnr, render_from_origin, surface_accuracy, view_measures
from worldgen.mesh.tsdf import TSDFConfig, _shelf_pack, box_atlas, build_tsdf
from worldgen.types import DepthMap

CFG = TSDFConfig(resolution=96, max_triangles=8000, texture_size=512, collision_triangles=2000)


@pytest.fixture(scope="module")
def room():
    return analytic_scene("room", 128)


@pytest.fixture(scope="module")
def room_tsdf(room):
    pano, depth, _, _ = room
    return build_tsdf(pano, depth, CFG)


def test_smoke_parts_and_report(room_tsdf):
    assert {"world", "collision"} <= set(room_tsdf.parts)
    rep = room_tsdf.report
    assert rep["triangles_marching_cubes"] >= rep["triangles_after"] > 0
    assert rep["triangles_after"] <= 8000
    assert rep["texture_size"] == [512, 512]
    w = room_tsdf["world"]
    assert w.texture.shape == (512, 512, 3)
    assert w.uvs.min() >= 0 and w.uvs.max() <= 1
    assert room_tsdf["collision"].n_faces <= 2000


def test_accuracy_and_winding(room, room_tsdf):
    pano, depth, gv, gf = room
    acc = surface_accuracy(room_tsdf["world"], gv, gf, depth, n_samples=20000)
    # 96 voxels over ~10 m: 10 cm voxels against a 4 cm threshold; the bound reflects that.
    assert acc["fscore"] > 0.8
    assert acc["chamfer_pct"] < 1.0
    vm = view_measures(room_tsdf["world"], depth)
    assert vm["front_face_share"] > 0.98
    assert vm["ray_coverage"] > 0.97


def test_baked_texture_reproduces_the_view(room, room_tsdf):
    pano = room[0]
    img, hit = render_from_origin(room_tsdf, pano.height)
    assert psnr(img, pano.image, hit) > 22.0


def test_box_atlas_charts_do_not_overlap():
    # Two unit squares facing different axes become two charts in disjoint texel boxes.
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    uv, vmap, faces, n = box_atlas(v, f, 64, 2)
    assert n == 2
    assert uv.min() >= 0 and uv.max() <= 1
    a = uv[faces[:2].ravel()]
    b = uv[faces[2:].ravel()]
    disjoint_u = a[:, 0].max() <= b[:, 0].min() or b[:, 0].max() <= a[:, 0].min()
    disjoint_v = a[:, 1].max() <= b[:, 1].min() or b[:, 1].max() <= a[:, 1].min()
    assert disjoint_u or disjoint_v
    assert np.allclose(v[vmap][faces], v[f])  # same geometry after the vertex split


def test_shelf_pack_overflow_is_none():
    assert _shelf_pack(np.array([40.0, 40.0]), np.array([40.0, 40.0]), 64) is None
    pos = _shelf_pack(np.array([30.0, 30.0]), np.array([20.0, 10.0]), 64)
    assert pos is not None and pos[1, 0] == 30.0


def test_deterministic(room):
    pano, depth, _, _ = room
    cfg = TSDFConfig(resolution=64, max_triangles=3000, texture_size=256, collision_triangles=0)
    a, b = build_tsdf(pano, depth, cfg), build_tsdf(pano, depth, cfg)
    assert np.array_equal(a["world"].vertices, b["world"].vertices)
    assert np.array_equal(a["world"].texture, b["world"].texture)


def test_xatlas_path_small(room):
    pano, depth, gv, gf = room
    cfg = TSDFConfig(
        resolution=48, max_triangles=1500, atlas="xatlas", atlas_chunk=800, texture_size=256, collision_triangles=0
    )
    sc = build_tsdf(pano, depth, cfg)
    assert sc.report["atlas_chunks"] >= 2
    assert sc["world"].uvs.min() >= 0 and sc["world"].uvs.max() <= 1


@pytest.mark.parametrize("bad", [{"resolution": 8}, {"texture_size": 8192}, {"atlas": "magic"}, {"view_fov_deg": 60.0}])
def test_bad_config(room, bad):
    pano, depth, _, _ = room
    with pytest.raises(InputError):
        build_tsdf(pano, depth, TSDFConfig(**bad))


def test_no_surface_is_an_error(room):
    pano = room[0]
    d = DepthMap(np.full((128, 256), np.inf, np.float32), np.ones((128, 256), bool))
    with pytest.raises(InputError, match="no finite surface"):
        build_tsdf(pano, d)
