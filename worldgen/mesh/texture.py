"""Textures for meshes seen from the capture point: equirect UVs, the panorama as texture, dilation.

A mesh built from one panorama is seen from the capture point through the panorama itself, so a
vertex's texture coordinate is simply the panorama pixel its ray points at. That mapping is exact
at every vertex even after simplification moves vertices, because it is recomputed from the
vertex's own direction. Two places need care:

* the ±180° seam (u = 0 and u = 1 are the same meridian): a triangle whose corners straddle it
  gets its own copies of the corners on the far side, with u moved by 1, clamped to [0, 1], so
  no triangle wraps across the whole texture;
* the poles (longitude undefined): a vertex on the Y axis takes, per triangle, the mean u of the
  triangle's other corners (the usual UV-sphere cap).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _detmath as dm
from ..errors import InputError
from ..types import Panorama


def panorama_texture(panorama: Panorama, max_width: int) -> np.ndarray:
    """The panorama as an 8-bit sRGB texture no wider than ``max_width`` (area-averaged down).

    Returns:
        [Ht, Wt, 3] uint8 with Wt = 2 Ht <= max_width.
    """
    if max_width < 2:
        raise InputError(f"texture width {max_width} is too small; use at least 2 (e.g. 4096)")
    img = panorama.to_uint8()
    w = img.shape[1]
    if w <= max_width:
        return img
    from PIL import Image

    new_w = max(2, (max_width // 2) * 2)
    out = Image.fromarray(img).resize((new_w, new_w // 2), Image.Resampling.BOX)
    return np.asarray(out, np.uint8)


def equirect_uvs(
    vertices: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray | None = None,
    uv_from: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """UVs from each vertex's ray direction, with corner copies at the seam and the poles.

    Args:
        vertices: positions seen from the origin, metres. [V, 3] float
        faces: CCW triangles. [F, 3] int
        normals: per-vertex values copied onto duplicated corners, or None. [V, 3]
        uv_from: the directions the UVs are computed from, where they are not the vertices'
            own (a sheet's skirt carries its neighbouring pixel's colour), or None. [V, 3]

    Returns:
        (vertices [V', 3] float32, faces [F, 3] int32, uvs [V', 2] float32 in [0, 1] with (0, 0)
        the top-left of the panorama, normals [V', 3] or None). V' >= V (copies appended).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    p = v if uv_from is None else np.asarray(uv_from, np.float64)
    # worldgen._detmath: the same bits on every CPU (numpy's arctan2 differs with AVX-512).
    r_xz = np.sqrt(p[:, 0] * p[:, 0] + p[:, 2] * p[:, 2])
    rad = np.linalg.norm(p, axis=1)
    polar = r_xz <= 1e-7 * np.maximum(rad, 1e-12)
    lon = dm.arctan2(p[:, 0], -p[:, 2])
    lat = dm.arctan2(p[:, 1], r_xz)
    u = np.mod((lon + math.pi) / (2 * math.pi), 1.0)
    vv = np.clip((math.pi / 2 - lat) / math.pi, 0.0, 1.0)

    cu = u[f]  # [F, 3] per-corner u
    cpol = polar[f]  # [F, 3]
    big = np.where(cpol, -np.inf, cu).max(1)
    small = np.where(cpol, np.inf, cu).min(1)
    wrap = (big - small) > 0.5  # faces straddling the seam
    cu_fix = np.where(wrap[:, None] & (cu < 0.5) & ~cpol, 1.0, cu)
    # Pole corners: mean u of the non-polar corners of the same face.
    npol = (~cpol).sum(1)
    mean_u = np.where(cpol, 0.0, cu_fix).sum(1) / np.maximum(npol, 1)
    cu_fix = np.where(cpol, mean_u[:, None], cu_fix)
    changed = np.abs(cu_fix - cu) > 1e-9
    uvs = np.stack([u, vv], 1)
    if not changed.any():
        return v.astype(np.float32), f.astype(np.int32), uvs.astype(np.float32), normals
    fi, ci = np.nonzero(changed)
    src = f[fi, ci]
    new_u = cu_fix[fi, ci]
    # One copy per (vertex, new u): corners of neighbouring faces that want the same u share it.
    key = np.stack([src, np.round(new_u * 2**24).astype(np.int64)], 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    new_idx = len(v) + np.arange(len(uniq))
    f = f.copy()
    f[fi, ci] = new_idx[inv]
    src_u = uniq[:, 0]
    u_copy = np.zeros(len(uniq))
    u_copy[inv] = new_u
    v_out = np.concatenate([v, v[src_u]])
    uv_out = np.concatenate([uvs, np.stack([u_copy, vv[src_u]], 1)])
    n_out = None if normals is None else np.concatenate([normals, np.asarray(normals)[src_u]])
    return v_out.astype(np.float32), f.astype(np.int32), uv_out.astype(np.float32), n_out


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup with clamp-to-edge, like an engine's sampler without mipmaps.

    Args:
        texture: 8-bit sRGB. [Ht, Wt, 3] uint8
        uv: (0, 0) top-left, (1, 1) bottom-right. [..., 2]

    Returns:
        sRGB colour in [0, 1]. [..., 3] float32
    """
    ht, wt = texture.shape[:2]
    x = np.clip(np.asarray(uv[..., 0], np.float64) * wt - 0.5, 0, wt - 1)
    y = np.clip(np.asarray(uv[..., 1], np.float64) * ht - 0.5, 0, ht - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(wt - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(ht - 2, 0))
    x1 = np.minimum(x0 + 1, wt - 1)
    y1 = np.minimum(y0 + 1, ht - 1)
    tx = (x - x0)[..., None]
    ty = (y - y0)[..., None]
    t = texture.astype(np.float32) / 255.0
    return ((t[y0, x0] * (1 - tx) + t[y0, x1] * tx) * (1 - ty) + (t[y1, x0] * (1 - tx) + t[y1, x1] * tx) * ty).astype(
        np.float32
    )


def dilate_islands(texture: np.ndarray, filled: np.ndarray, iterations: int) -> np.ndarray:
    """Grow texture islands outwards so mipmapped/bilinear lookups at chart borders see no background.

    Each pass gives every empty texel the mean of its filled 8-neighbours (a vectorised shift-and-add).

    Args:
        texture: colours. [Ht, Wt, 3] float or uint8
        filled: texels that belong to an island. [Ht, Wt] bool
        iterations: number of one-texel rings to add.

    Returns:
        [Ht, Wt, 3] same dtype; texels still unreached keep their value.
    """
    img = texture.astype(np.float32)
    mask = filled.copy()
    shifts = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for _ in range(iterations):
        if mask.all():
            break
        acc = np.zeros_like(img)
        cnt = np.zeros(mask.shape, np.float32)
        pm = np.pad(mask, 1)
        pi = np.pad(img, ((1, 1), (1, 1), (0, 0)))
        h, w = mask.shape
        for dy, dx in shifts:
            m = pm[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            acc += pi[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] * m[..., None]
            cnt += m
        grow = ~mask & (cnt > 0)
        img[grow] = acc[grow] / cnt[grow][:, None]
        mask = mask | grow
    return img.astype(texture.dtype) if texture.dtype != np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)
