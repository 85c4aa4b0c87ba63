"""Mesh writers: GLB and USD/USDA/USDC/USDZ, checked by reading them back and by the real validators."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest
from _exporters_data import grid, mesh_scene, needs_node, needs_nvidia

from worldgen.errors import InputError
from worldgen.exporters import ExportSettings, export_glb, export_usda, export_usdz, resolve
from worldgen.exporters._mesh_common import split_chunks, vertex_normals
from worldgen.exporters.validate import validate_gltf, validate_usd
from worldgen.types import Mesh, MeshScene


def _glb(data: bytes):
    magic, version, total = struct.unpack_from("<III", data)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    (jlen,) = struct.unpack_from("<I", data, 12)
    return json.loads(data[20 : 20 + jlen]), data[20 + jlen + 8 :]


def _acc(doc, blob, idx):
    acc = doc["accessors"][idx]
    view = doc["bufferViews"][acc["bufferView"]]
    comps = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc["type"]]
    dt = {5126: "<f4", 5123: "<u2", 5125: "<u4"}[acc["componentType"]]
    return np.frombuffer(blob, dt, acc["count"] * comps, view["byteOffset"]).reshape(acc["count"], comps)


def _tris(vertices, faces):
    """Triangles as sorted tuples of rounded corner positions (order-free comparison)."""
    t = np.round(vertices[faces].astype(np.float64), 5)
    return sorted(tuple(map(tuple, tri)) for tri in t)


def test_glb_structure_and_values():
    scene = mesh_scene()
    doc, blob = _glb(export_glb(scene))
    assert doc["asset"]["version"] == "2.0"
    assert doc["extensionsUsed"] == ["KHR_materials_unlit", "OMI_physics_body", "OMI_physics_shape"]
    assert "extensionsRequired" not in doc
    names = [doc["nodes"][i]["name"] for i in doc["scenes"][0]["nodes"]]
    assert names == ["world", "sky", "collision"]
    prim = doc["meshes"][0]["primitives"][0]
    pos = _acc(doc, blob, prim["attributes"]["POSITION"])
    np.testing.assert_array_equal(pos, scene["world"].vertices)  # metres, glTF frame: untouched
    acc = doc["accessors"][prim["attributes"]["POSITION"]]
    assert acc["min"] == pos.min(0).tolist() and acc["max"] == pos.max(0).tolist()
    n = _acc(doc, blob, prim["attributes"]["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-6)
    assert (n[:, 1] > 0.5).all()  # CCW faces of the ground face up
    np.testing.assert_array_equal(_acc(doc, blob, prim["attributes"]["TEXCOORD_0"]), scene["world"].uvs)
    assert doc["accessors"][prim["indices"]]["componentType"] == 5123  # u16 for 144 vertices
    mat = doc["materials"][prim["material"]]
    assert mat["pbrMetallicRoughness"]["metallicFactor"] == 0 and "KHR_materials_unlit" in mat["extensions"]
    from PIL import Image

    img = doc["images"][0]
    view = doc["bufferViews"][img["bufferView"]]
    with Image.open(io.BytesIO(blob[view["byteOffset"] : view["byteOffset"] + view["byteLength"]])) as im:
        assert im.size == (128, 64) and img["mimeType"] == "image/jpeg"  # 100x60 -> nearest powers of two


def test_glb_uint32_and_chunks_keep_every_triangle():
    v, f, uv = grid(260)  # 67,600 vertices: needs uint32
    big = MeshScene({"world": Mesh(v, f, uvs=uv)})
    doc, blob = _glb(export_glb(big))
    idx = doc["meshes"][0]["primitives"][0]["indices"]
    assert doc["accessors"][idx]["componentType"] == 5125
    doc, blob = _glb(export_glb(big, ExportSettings(max_triangles_per_chunk=50_000)))
    parent = doc["nodes"][doc["scenes"][0]["nodes"][0]]
    assert parent["name"] == "world" and len(parent["children"]) == 3
    tris = []
    for mesh in doc["meshes"]:
        p = mesh["primitives"][0]
        faces = _acc(doc, blob, p["indices"]).reshape(-1, 3)
        assert len(faces) <= 50_000
        assert doc["accessors"][p["indices"]]["componentType"] == 5123  # each chunk fits in u16
        tris += _tris(_acc(doc, blob, p["attributes"]["POSITION"]), faces.astype(np.int64))
    assert sorted(tris) == _tris(v, f)


def test_collision_is_a_physics_shape_no_node_draws():
    scene = mesh_scene()
    doc, blob = _glb(export_glb(scene))
    node = doc["nodes"][doc["scenes"][0]["nodes"][2]]
    assert node["name"] == "collision" and "mesh" not in node  # nothing for a viewer to draw
    shape = doc["extensions"]["OMI_physics_shape"]["shapes"][
        node["extensions"]["OMI_physics_body"]["collider"]["shape"]
    ]
    assert shape["type"] == "trimesh"
    prim = doc["meshes"][shape["trimesh"]["mesh"]]["primitives"][0]
    assert "material" not in prim
    assert _tris(_acc(doc, blob, prim["attributes"]["POSITION"]), _acc(doc, blob, prim["indices"]).reshape(-1, 3)) == (
        _tris(scene["collision"].vertices, scene["collision"].faces)
    )
    drawn = {n["mesh"] for n in doc["nodes"] if "mesh" in n}
    assert shape["trimesh"]["mesh"] not in drawn and len(drawn) == 2


def test_unreal_names_collision_ucx():
    doc, _ = _glb(export_glb(mesh_scene(), resolve("unreal")))
    names = [doc["nodes"][i]["name"] for i in doc["scenes"][0]["nodes"]]
    assert names == ["world", "sky", "UCX_world_00"]
    ucx = doc["nodes"][doc["scenes"][0]["nodes"][2]]
    # Interchange needs a mesh node to find UCX_ collision; KHR_node_visibility hides it elsewhere.
    assert "mesh" in ucx and ucx["extensions"]["KHR_node_visibility"] == {"visible": False}
    assert "KHR_node_visibility" in doc["extensionsUsed"] and "extensionsRequired" not in doc


def test_collision_file_mode_leaves_it_out():
    doc, _ = _glb(export_glb(mesh_scene(), resolve("web")))
    assert [doc["nodes"][i]["name"] for i in doc["scenes"][0]["nodes"]] == ["world", "sky"]


def test_split_chunks_and_normals_units():
    v, f, _ = grid(11)
    chunks = split_chunks(Mesh(v, f), "world", 70)
    assert [c.name for c in chunks] == ["world_00", "world_01", "world_02"]
    assert sum(len(c.faces) for c in chunks) == len(f)
    n = vertex_normals(np.array([[0, 0, 0], [1, 0, 0], [0, 0, -1], [5, 5, 5]], np.float32), np.array([[0, 1, 2]]))
    np.testing.assert_allclose(n, [[0, 1, 0]] * 4, atol=1e-6)  # CCW seen from +Y; isolated vertex -> +Y


def test_empty_scene_is_an_input_error():
    with pytest.raises(InputError, match="no triangles"):
        export_glb(MeshScene({"lod1": Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]))}))


@needs_node
@pytest.mark.validators
@pytest.mark.parametrize("engine", ["default", "unreal", "web", "godot"])
def test_glb_passes_khronos_validator(tmp_path, engine):
    p = tmp_path / "world.glb"
    p.write_bytes(export_glb(mesh_scene(), resolve(engine, max_triangles_per_chunk=100)))
    f = validate_gltf(p)
    assert (f.errors, f.warnings) == (0, 0), f.messages
    assert f.counts["totalTriangleCount"] == sum(
        m.n_faces for k, m in mesh_scene().parts.items() if engine != "web" or k != "collision"
    )


def test_usda_stage_rules(tmp_path):
    from pxr import Usd, UsdGeom, UsdPhysics, UsdShade

    scene = mesh_scene()
    files = export_usda(scene)
    assert set(files) == {
        "world.usda",
        "world_textures/world_basecolor.jpg",
        "world_textures/sky_basecolor.jpg",
        "world_textures/sky_latlong.png",  # the DomeLight's environment
    }
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    stage = Usd.Stage.Open(str(tmp_path / "world.usda"))
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    root = stage.GetDefaultPrim()
    assert root.GetPath() == "/World" and Usd.ModelAPI(root).GetKind() == "assembly"
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/World/world/world"))
    assert mesh.GetSubdivisionSchemeAttr().Get() == "none"
    np.testing.assert_array_equal(np.array(mesh.GetPointsAttr().Get()), scene["world"].vertices)
    st = np.array(UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st").Get())
    np.testing.assert_allclose(st[:, 1], 1 - scene["world"].uvs[:, 1], atol=1e-6)  # USD st origin bottom-left
    assert mesh.GetExtentAttr().Get() is not None
    mat, _ = UsdShade.MaterialBindingAPI(mesh.GetPrim()).ComputeBoundMaterial()
    assert mat.GetPath() == "/World/world/Looks/world_material"
    col = stage.GetPrimAtPath("/World/collision/collision")
    assert col.HasAPI(UsdPhysics.CollisionAPI) and col.HasAPI(UsdPhysics.MeshCollisionAPI)


def test_usdz_is_aligned_with_usdc_root_first():
    data = export_usdz(mesh_scene())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        assert infos[0].filename.endswith(".usdc")
        assert {i.filename for i in infos[1:]} == {
            "world_textures/world_basecolor.jpg",
            "world_textures/sky_basecolor.jpg",
            "world_textures/sky_latlong.png",
        }
        for i in infos:
            assert i.compress_type == zipfile.ZIP_STORED
            header_len = 30 + len(i.filename.encode()) + len(i.extra)
            assert (i.header_offset + header_len) % 64 == 0


@needs_nvidia
@pytest.mark.validators
def test_usdz_passes_usd_validators(tmp_path):
    p = tmp_path / "world.usdz"
    p.write_bytes(export_usdz(mesh_scene(), resolve("unreal")))
    findings = validate_usd(p)
    assert [f.validator for f in findings] == ["UsdValidation", "usd-validation-nvidia"]
    for f in findings:
        assert (f.errors, f.warnings) == (0, 0), (f.validator, f.messages)
    assert findings[0].counts["meshes"] == 3


@pytest.mark.parametrize("fmt", ["glb", "usdz", "usdc", "usda"])
def test_mesh_formats_are_deterministic(fmt):
    from worldgen.exporters import get_format

    f = get_format(fmt)
    assert f.export(mesh_scene(), ExportSettings()) == f.export(mesh_scene(), ExportSettings())
