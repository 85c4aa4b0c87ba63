"""Worlds built by the real pipeline stages at test size, and an independent GLB "viewer".

The viewer does what a viewer that draws every node does, with its own code (no worldgen
exporter code): it parses the GLB container, walks the scene's node tree, and draws every node
that has a ``mesh`` and is not hidden by ``KHR_node_visibility``, by casting one ray per
panorama pixel from a point (Open3D) and sampling the hit triangle's base-colour texture.
"""

from __future__ import annotations

import functools
import io
import json
import math
import struct

import numpy as np

from worldgen.geometry.equirect import equirect_to_perspective, look_rotation, pixel_to_direction
from worldgen.mesh.sheet import SheetConfig, build_sheet
from worldgen.procedural.backend import ProceduralConfig, synthesize
from worldgen.procedural.spec import parse_prompt
from worldgen.types import Camera

WIDTH = 256  # panorama columns of the test worlds
W, H, FOV_Y = 256, 128, 60.0  # the clients' (three.js, Blender) render size and vertical FOV, degrees


def cut_view(pano: np.ndarray, look) -> np.ndarray:
    """The W x H view of an equirect ``pano`` [h, 2h, 3] looking along ``look`` (glTF frame) with
    vertical FOV_Y: what a client rendering from the capture point should show. [H, W, 3] float32"""
    fov_x = math.degrees(2 * math.atan(math.tan(math.radians(FOV_Y / 2)) * W / H))
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.asarray(look, float))
    return equirect_to_perspective(pano.astype(np.float32), Camera.perspective(W, H, fov_x, m))


@functools.lru_cache(maxsize=4)
def world(prompt: str):
    """(panorama uint8 [128, 256, 3], MeshScene) for a prompt, built by the procedural + sheet stages.

    Cached: the client and placement test modules share the same few worlds (all read-only).
    """
    spec, _ = parse_prompt(prompt, 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=WIDTH))
    cfg = SheetConfig(grid_width=WIDTH, max_triangles=20_000, texture_width=2 * WIDTH, collision_triangles=3000)
    cfg = SheetConfig(**{**cfg.__dict__, "sky_grid_width": 128})
    return pano.to_uint8(), build_sheet(pano, depth, cfg)


def read_glb(data: bytes) -> tuple[dict, bytes]:
    (jlen,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20 : 20 + jlen])
    return doc, data[20 + jlen + 8 :]


def _accessor(doc: dict, blob: bytes, i: int) -> np.ndarray:
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc["type"]]
    dt = {5126: "<f4", 5125: "<u4", 5123: "<u2", 5121: "u1"}[acc["componentType"]]
    off = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, dt, acc["count"] * n, off).reshape(acc["count"], n)


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.array(node["matrix"], np.float64).reshape(4, 4).T
    m = np.eye(4)
    x, y, z, w = node.get("rotation", [0, 0, 0, 1])
    r = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    m[:3, :3] = r * np.array(node.get("scale", [1, 1, 1]))[None, :]
    m[:3, 3] = node.get("translation", [0, 0, 0])
    return m


def drawn_primitives(doc: dict, blob: bytes, extra_meshes: tuple[int, ...] = ()) -> list[dict]:
    """Triangles a draw-every-visible-node viewer draws: [{positions, faces, uvs, texture}].

    ``extra_meshes`` adds meshes no node draws (to show what drawing them would cost).
    """
    out = []

    def add_mesh(mi: int, mat: np.ndarray) -> None:
        for prim in doc["meshes"][mi]["primitives"]:
            if prim.get("mode", 4) != 4:
                continue
            pos = _accessor(doc, blob, prim["attributes"]["POSITION"]).astype(np.float64)
            pos = pos @ mat[:3, :3].T + mat[:3, 3]
            faces = _accessor(doc, blob, prim["indices"]).reshape(-1, 3).astype(np.int64)
            uvs = tex = None
            material = doc["materials"][prim["material"]] if "material" in prim else {}
            bct = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
            if bct is not None and "TEXCOORD_0" in prim["attributes"]:
                from PIL import Image

                img = doc["images"][doc["textures"][bct["index"]]["source"]]
                view = doc["bufferViews"][img["bufferView"]]
                raw = blob[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]
                tex = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
                uvs = _accessor(doc, blob, prim["attributes"]["TEXCOORD_0"]).astype(np.float64)
            out.append({"positions": pos, "faces": faces, "uvs": uvs, "texture": tex})

    def walk(i: int, parent: np.ndarray) -> None:
        node = doc["nodes"][i]
        if node.get("extensions", {}).get("KHR_node_visibility", {}).get("visible", True) is False:
            return  # hidden with its subtree
        mat = parent @ _node_matrix(node)
        if "mesh" in node:
            add_mesh(node["mesh"], mat)
        for c in node.get("children", []):
            walk(c, mat)

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        walk(root, np.eye(4))
    for mi in extra_meshes:
        add_mesh(mi, np.eye(4))
    return out


def render(prims: list[dict], width: int = WIDTH, eye=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Equirect render from ``eye``: (colour [H, W, 3] uint8, hit distance [H, W] float, inf = nothing)."""
    import open3d as o3d

    h = width // 2
    rs = o3d.t.geometry.RaycastingScene()
    for p in prims:
        rs.add_triangles(
            o3d.core.Tensor(p["positions"].astype(np.float32)), o3d.core.Tensor(p["faces"].astype(np.uint32))
        )
    yy, xx = np.mgrid[0:h, 0:width] + 0.5
    d = pixel_to_direction(xx, yy, width, h)
    o = np.broadcast_to(np.asarray(eye, np.float64), d.shape)
    hit = rs.cast_rays(o3d.core.Tensor(np.concatenate([o, d], -1).reshape(-1, 6).astype(np.float32)))
    gid = hit["geometry_ids"].numpy().reshape(h, width).astype(np.int64)
    pid = hit["primitive_ids"].numpy().reshape(h, width).astype(np.int64)
    bary = hit["primitive_uvs"].numpy().reshape(h, width, 2).astype(np.float64)
    t = hit["t_hit"].numpy().reshape(h, width)
    img = np.zeros((h, width, 3), np.uint8)
    for g, p in enumerate(prims):  # one pass per drawn primitive, vectorised over its pixels
        sel = gid == g
        if not sel.any():
            continue
        if p["texture"] is None:
            img[sel] = 128  # untextured (e.g. a drawn collision mesh): flat grey
            continue
        tri = p["faces"][pid[sel]]
        u, v = bary[sel, 0], bary[sel, 1]
        uv = (
            (1 - u - v)[:, None] * p["uvs"][tri[:, 0]]
            + u[:, None] * p["uvs"][tri[:, 1]]
            + v[:, None] * p["uvs"][tri[:, 2]]
        )
        th, tw = p["texture"].shape[:2]
        col = np.mod(np.floor(uv[:, 0] * tw).astype(np.int64), tw)
        row = np.clip(np.floor(uv[:, 1] * th).astype(np.int64), 0, th - 1)
        img[sel] = p["texture"][row, col]
    return img, np.where(np.isfinite(t), t, np.inf)


def scene_primitives(scene, names=("world", "sky")) -> list[dict]:
    """The MeshScene's own parts as primitives (the world-and-sky reference, before any export)."""
    return [
        {
            "positions": scene[n].vertices.astype(np.float64),
            "faces": scene[n].faces,
            "uvs": scene[n].uvs,
            "texture": scene[n].texture,
        }
        for n in names
        if n in scene
    ]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def usd_drawn_primitives(path: str) -> list[dict]:
    """Triangles a USD renderer draws from a .usdz: every Mesh prim whose computed visibility is not
    invisible and whose purpose is default or render, textured by the UsdUVTexture its bound
    material reads (read from the package). Triangle meshes only (what worldgen writes)."""
    import zipfile

    from PIL import Image
    from pxr import Usd, UsdGeom, UsdShade

    stage = Usd.Stage.Open(path)
    out = []
    with zipfile.ZipFile(path) as z:
        for prim in stage.Traverse():
            if not prim.IsA(UsdGeom.Mesh):
                continue
            img = UsdGeom.Imageable(prim)
            if img.ComputeVisibility() == UsdGeom.Tokens.invisible or img.ComputePurpose() not in (
                UsdGeom.Tokens.default_,
                UsdGeom.Tokens.render,
            ):
                continue
            mesh = UsdGeom.Mesh(prim)
            xf = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()), np.float64)
            pts = np.array(mesh.GetPointsAttr().Get(), np.float64)
            pts = pts @ xf[:3, :3] + xf[3, :3]  # Gf matrices are row-vector: p' = p M
            counts = np.array(mesh.GetFaceVertexCountsAttr().Get())
            assert (counts == 3).all()
            faces = np.array(mesh.GetFaceVertexIndicesAttr().Get(), np.int64).reshape(-1, 3)
            uvs = tex = None
            material = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()[0]
            st = UsdGeom.PrimvarsAPI(prim).GetPrimvar("st")
            if material and st:
                for shader in Usd.PrimRange(material.GetPrim()):
                    s = UsdShade.Shader(shader)
                    if s and s.GetIdAttr().Get() == "UsdUVTexture":
                        asset = s.GetInput("file").Get()
                        inner = asset.resolvedPath.split("[", 1)[1].rstrip("]")
                        tex = np.asarray(Image.open(io.BytesIO(z.read(inner))).convert("RGB"))
                uv = np.array(st.Get(), np.float64)
                uvs = np.c_[uv[:, 0], 1.0 - uv[:, 1]]  # USD st origin bottom-left -> image rows
            out.append({"positions": pts, "faces": faces, "uvs": uvs, "texture": tex, "name": prim.GetName()})
    return out


def visual_parts(scene) -> list[str]:
    """Names of the parts a viewer should draw (every part but the collision), sorted."""
    return sorted(k for k in scene.parts if k != "collision")
