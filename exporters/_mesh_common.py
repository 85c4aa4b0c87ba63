"""Shared mesh preparation for the GLB and USD writers: chunks, normals, textures, part roles."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

from worldgen.errors import InputError
from worldgen.types import Mesh, MeshScene

from .placement import fit_far_plane
from .settings import ExportSettings

_LOD = re.compile(r"lod\d+")


@dataclass(frozen=True, eq=False)
class Chunk:
    """One piece of a part, compacted to the vertices its faces use.

    Args:
        name: node / prim name.
        vertices: metres, world frame. [V, 3] float32
        faces: CCW triangles. [F, 3] uint32
        normals: unit vertex normals. [V, 3] float32
        uvs: glTF convention (0, 0) top-left, or None. [V, 2] float32
        colors: sRGB vertex colours, or None. [V, 3] float32
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None
    colors: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Part:
    """A mesh part ready to write: its role, its chunks and its encoded texture (if any)."""

    name: str
    role: str  # "surface", "sky" or "collision"
    chunks: list[Chunk]
    texture: bytes | None
    texture_mime: str | None
    texture_size: tuple[int, int] | None


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals; vertices on no (or only degenerate) faces get +Y.

    Args:
        vertices: [V, 3] float32. faces: [F, 3] int.

    Returns:
        [V, 3] float32 unit vectors.
    """
    v = vertices.astype(np.float64)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    idx = faces.reshape(-1)
    w = np.repeat(fn, 3, axis=0)  # each face normal credited to its three corners
    acc = np.stack([np.bincount(idx, weights=w[:, k], minlength=len(v)) for k in range(3)], axis=1)
    return unit_or_up(acc)


def unit_or_up(n: np.ndarray) -> np.ndarray:
    """Normalise rows; rows of (near) zero length become +Y. [V, 3] -> [V, 3] float32"""
    n = np.asarray(n, dtype=np.float64)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    out = np.where(ln > 1e-12, n / np.maximum(ln, 1e-300), np.array([0.0, 1.0, 0.0]))
    return out.astype(np.float32)


def split_chunks(mesh: Mesh, name: str, max_tris: int) -> list[Chunk]:
    """Split ``mesh`` into contiguous face ranges of at most ``max_tris`` triangles."""
    normals = unit_or_up(mesh.normals) if mesh.normals is not None else vertex_normals(mesh.vertices, mesh.faces)
    nf = mesh.n_faces
    n_chunks = max(1, -(-nf // max_tris))
    out = []
    for i in range(n_chunks):  # one iteration per ~1M-triangle chunk, not per element
        f = mesh.faces[i * max_tris : (i + 1) * max_tris]
        used, inv = np.unique(f.reshape(-1), return_inverse=True)
        faces = inv.reshape(-1, 3).astype(np.uint32)
        cname = name if n_chunks == 1 else f"{name}_{i:02d}"
        out.append(
            Chunk(
                cname,
                mesh.vertices[used],
                faces,
                normals[used],
                None if mesh.uvs is None else mesh.uvs[used],
                None if mesh.vertex_colors is None else mesh.vertex_colors[used],
            )
        )
    return out


def _pow2(n: int, limit: int) -> int:
    p = 1 << max(0, int(round(np.log2(max(n, 1)))))
    lim = 1 << int(np.floor(np.log2(limit)))
    return int(min(p, lim))


def encode_texture(texture: np.ndarray, cfg: ExportSettings) -> tuple[bytes, str, tuple[int, int]]:
    """Resize to power-of-two sides <= ``cfg.max_texture_size`` and encode as JPEG or PNG.

    Args:
        texture: 8-bit sRGB. [Ht, Wt, 3] uint8

    Returns:
        (file bytes, MIME type, (width, height)).
    """
    from PIL import Image

    h, w = texture.shape[:2]
    tw, th = _pow2(w, cfg.max_texture_size), _pow2(h, cfg.max_texture_size)
    img = Image.fromarray(np.ascontiguousarray(texture), "RGB")
    if (tw, th) != (w, h):
        img = img.resize((tw, th), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if cfg.texture_format == "jpeg":
        img.save(buf, format="JPEG", quality=cfg.jpeg_quality, subsampling=0, optimize=False)
        mime = "image/jpeg"
    else:
        img.save(buf, format="PNG", compress_level=6)
        mime = "image/png"
    return buf.getvalue(), mime, (tw, th)


def role_of(name: str) -> str | None:
    """ "sky", "collision", "surface" (every other part: world, completion layers...), or None for
    LOD parts, which are not part of the product (docs/engines.md, "LODs": no mesher makes them and
    a single-viewpoint world of <= 500k triangles needs none)."""
    if name == "sky":
        return "sky"
    if name == "collision":
        return "collision"
    if _LOD.fullmatch(name):
        return None
    return "surface"


def prepare_parts(
    scene: MeshScene, cfg: ExportSettings, *, include_collision: bool = True
) -> tuple[list[Part], list[str]]:
    """Parts to write, in scene order, plus the names of parts skipped (LODs, empty meshes).

    The scene is first fitted inside ``cfg.far_plane`` (:func:`placement.fit_far_plane`).

    Collision parts are named ``cfg.collision_prefix + <first surface mesh name>`` so Unreal's
    UCX_ convention ties them to the render mesh; their textures are never written.
    """
    if not isinstance(scene, MeshScene):
        raise InputError(f"mesh writers take a MeshScene, got {type(scene).__name__}")
    scene, _ = fit_far_plane(scene, cfg.far_plane)
    parts: list[Part] = []
    skipped: list[str] = []
    for name, mesh in scene.parts.items():
        role = role_of(name)
        if role is None or mesh.n_faces == 0 or (role == "collision" and not include_collision):
            skipped.append(name)
            continue
        chunks = split_chunks(mesh, name, cfg.max_triangles_per_chunk)
        tex = mime = size = None
        if role != "collision" and mesh.texture is not None and mesh.uvs is not None:
            tex, mime, size = encode_texture(mesh.texture, cfg)
        parts.append(Part(name, role, chunks, tex, mime, size))
    if not parts:
        raise InputError("the mesh scene has no triangles to export; run the mesh stage first")
    render = next((p.chunks[0].name for p in parts if p.role == "surface"), "world")
    out = []
    for p in parts:
        if p.role == "collision" and cfg.collision_prefix:
            chunks = [
                Chunk(f"{cfg.collision_prefix}{render}_{i:02d}", c.vertices, c.faces, c.normals, None, None)
                for i, c in enumerate(p.chunks)
            ]
            p = Part(p.name, p.role, chunks, None, None, None)
        out.append(p)
    return out, skipped
