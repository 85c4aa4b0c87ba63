"""Mesh GLB (glTF 2.0 binary): the interchange master for Unity, Unreal, Blender and the web.

Rules followed (see docs/engines.md):
    - glTF frame and units are worldgen's own (+Y up, metres, right-handed, CCW front faces),
      so vertices are written unchanged and every importer converts to its engine itself.
    - POSITION with min/max, unit NORMAL always, TEXCOORD_0 with (0, 0) at the top-left.
    - Indices uint16 when a chunk has <= 65535 vertices (so 65535, the restart value, never
      occurs), else uint32; parts above ``max_triangles_per_chunk`` become several meshes
      under one parent node.
    - Textures power-of-two <= ``max_texture_size``, JPEG or PNG, sampled as sRGB base colour.
    - Materials: PBR fallback (base colour texture, metallic 0, roughness 0.9) plus the
      optional KHR_materials_unlit (listed in extensionsUsed, never extensionsRequired).
    - The sky dome is its own top-level node, placed inside the preset's far plane (distant
      geometry folded: ``placement.py``).
    - The collision mesh is never drawn: its glTF mesh is referenced only by an
      ``OMI_physics_shape`` trimesh shape, and its node carries a static ``OMI_physics_body``
      collider (Godot imports both natively; viewers that draw every node's ``mesh`` skip it,
      because the node has none). Both extensions are optional (extensionsUsed only).
    - With the Unreal preset the collision node is named ``UCX_<render mesh>_NN`` and keeps its
      ``mesh`` too (Unreal's Interchange finds collision by mesh-node name), hidden with the
      optional ``KHR_node_visibility`` (``visible: false``) for viewers that honour it.
    - Vertex colours, when a part has no texture, go to COLOR_0 decoded to linear (glTF's rule).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from worldgen.types import MeshScene, srgb_to_linear

from ._glb import ELEMENT_ARRAY_BUFFER, GlbBuilder
from ._mesh_common import Part, prepare_parts
from .placement import fit_far_plane
from .settings import ExportSettings

UNLIT = "KHR_materials_unlit"
SHAPE = "OMI_physics_shape"
BODY = "OMI_physics_body"
VISIBILITY = "KHR_node_visibility"
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT, _CLAMP = 9729, 9987, 10497, 33071


def _material(b: GlbBuilder, part: Part, cfg: ExportSettings, tex_index: int | None) -> int:
    pbr: dict[str, Any] = {"metallicFactor": 0.0, "roughnessFactor": 0.9 if part.role != "collision" else 1.0}
    if tex_index is not None:
        pbr["baseColorTexture"] = {"index": tex_index}
    mat: dict[str, Any] = {"name": f"{part.name}_material", "pbrMetallicRoughness": pbr}
    if part.role == "collision":
        mat["doubleSided"] = True
    elif cfg.unlit:
        mat["extensions"] = {UNLIT: {}}
    return b.add("materials", mat)


def _primitive(b: GlbBuilder, chunk, material: int | None, with_uv: bool) -> dict:
    attrs = {"POSITION": b.accessor(chunk.vertices, minmax=True), "NORMAL": b.accessor(chunk.normals)}
    if with_uv and chunk.uvs is not None:
        attrs["TEXCOORD_0"] = b.accessor(chunk.uvs)
    elif chunk.colors is not None:
        attrs["COLOR_0"] = b.accessor(srgb_to_linear(chunk.colors))
    idx_type = np.uint16 if chunk.vertices.shape[0] <= 65535 else np.uint32
    indices = b.accessor(chunk.faces.reshape(-1).astype(idx_type), target=ELEMENT_ARRAY_BUFFER)
    prim = {"attributes": attrs, "indices": indices, "mode": 4}
    if material is not None:
        prim["material"] = material
    return prim


def export_glb(scene: MeshScene, cfg: ExportSettings | None = None) -> bytes:
    """GLB bytes of the mesh scene (see the module docstring for every rule applied)."""
    cfg = cfg or ExportSettings()
    parts, _ = prepare_parts(scene, cfg, include_collision=cfg.collision == "node")
    return _build(parts, cfg)


def export_collision_glb(scene: MeshScene, cfg: ExportSettings | None = None) -> bytes:
    """GLB holding only the collision part (``collision.glb`` for ``collision = "file"``)."""
    cfg = cfg or ExportSettings()
    if "collision" not in scene:
        from worldgen.errors import InputError

        raise InputError("the mesh scene has no 'collision' part; the mesh stage did not make one")
    # Fold the whole scene first so the collision matches the folded world of world.glb.
    scene, _ = fit_far_plane(scene, cfg.far_plane)
    flat = dataclasses.replace(cfg, far_plane=0.0)
    parts, _ = prepare_parts(MeshScene({"collision": scene["collision"]}), flat)
    return _build(parts, flat, collision_as_shape=False)


def _collision_nodes(b: GlbBuilder, part: Part, cfg: ExportSettings) -> list[int]:
    """One node per chunk whose mesh only an OMI physics shape references (never drawn)."""
    shapes = b.doc.setdefault("extensions", {}).setdefault(SHAPE, {"shapes": []})["shapes"]
    nodes = []
    for chunk in part.chunks:
        mesh = b.add("meshes", {"name": chunk.name, "primitives": [_primitive(b, chunk, None, False)]})
        shapes.append({"type": "trimesh", "trimesh": {"mesh": mesh}})
        node: dict[str, Any] = {"name": chunk.name, "extensions": {BODY: {"collider": {"shape": len(shapes) - 1}}}}
        if cfg.collision_prefix:  # Unreal finds UCX_ collision by mesh-node name: keep the mesh, hidden
            node["mesh"] = mesh
            node["extensions"][VISIBILITY] = {"visible": False}
        nodes.append(b.add("nodes", node))
    return nodes


def _build(parts: list[Part], cfg: ExportSettings, collision_as_shape: bool = True) -> bytes:
    b = GlbBuilder()
    roots: list[int] = []
    used: set[str] = set()
    for part in parts:
        if part.role == "collision" and collision_as_shape:
            nodes = _collision_nodes(b, part, cfg)
            used |= {SHAPE, BODY} | ({VISIBILITY} if cfg.collision_prefix else set())
            roots.append(nodes[0] if len(nodes) == 1 else b.add("nodes", {"name": part.name, "children": nodes}))
            continue
        tex_index = None
        if part.texture is not None:
            img = b.image(part.texture, part.texture_mime, f"{part.name}_basecolor")
            wrap = _REPEAT if part.role == "sky" else _CLAMP
            sampler = b.add(
                "samplers", {"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": wrap, "wrapT": _CLAMP}
            )
            tex_index = b.add("textures", {"sampler": sampler, "source": img})
        material = _material(b, part, cfg, tex_index)
        if "extensions" in b.doc["materials"][material]:
            used.add(UNLIT)
        nodes = []
        for chunk in part.chunks:
            prim = _primitive(b, chunk, material, tex_index is not None)
            mesh = b.add("meshes", {"name": chunk.name, "primitives": [prim]})
            nodes.append(b.add("nodes", {"name": chunk.name, "mesh": mesh}))
        if len(nodes) == 1:
            roots.append(nodes[0])
        else:
            roots.append(b.add("nodes", {"name": part.name, "children": nodes}))
    b.doc["scenes"] = [{"name": "world", "nodes": roots}]
    b.doc["scene"] = 0
    if used:
        b.doc["extensionsUsed"] = sorted(used)
    return b.to_bytes()


from .registry import Format, register_format  # noqa: E402  (modules register themselves last)

register_format(
    Format(
        "glb",
        "mesh",
        "world.glb",
        export_glb,
        "glTF 2.0 binary mesh: Unity (glTFast), Unreal (Interchange), Blender, web",
    )
)
