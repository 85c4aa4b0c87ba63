"""The sky as an environment: ``sky.png`` + ``sky.hdr`` latlong images and a USD DomeLight texture.

Engines light and back their scenes with a latlong environment (Unity's Panoramic skybox,
Blender's World, Godot's PanoramaSkyMaterial, three.js ``scene.background``, USD's DomeLight).
The image is the panorama's sky as seen from the capture point, plus the distant background
when a preset folds geometry (what lies beyond ``KEEP_FRACTION`` x the far plane), found by
casting a ray per pixel from the capture point into the fitted scene (Open3D): a pixel is kept
when its ray first meets the sky dome (or a folded backdrop). Every other pixel (near world,
which the world mesh covers anyway) takes the colour of the nearest kept pixel above it in its
column (below it for columns whose sky starts lower), blurred along the row, so the environment
shows a horizon, not the near ground at infinity.

Files (worldgen's panorama mapping, docs/conventions.md: the image centre looks along -Z):
    - ``sky.png``: 8-bit sRGB.
    - ``sky.hdr``: Radiance RGBE, linear light (the same colours; 8-bit sources carry no more
      range, but engines' HDRI slots take .hdr).
    - inside USD: ``<stem>_textures/sky_latlong.png``, the same image turned half a turn so that
      it follows the OpenEXR latlong convention a UsdLux DomeLight uses (centre along +Z).
"""

from __future__ import annotations

import io
import logging

import numpy as np

from worldgen.types import MeshScene, srgb_to_linear

from .placement import KEEP_FRACTION, fit_far_plane
from .settings import ExportSettings

log = logging.getLogger(__name__)

MASK_ROWS = 256  # rays cast: MASK_ROWS x 2 MASK_ROWS, upsampled to the image


def _kept_pixels(scene: MeshScene, far_plane: float, rows: int) -> np.ndarray:
    """[rows, 2 rows] bool: the capture point's ray meets the sky dome (or a folded backdrop) first."""
    import open3d as o3d

    from worldgen.geometry.equirect import pixel_to_direction

    rs = o3d.t.geometry.RaycastingScene()
    ids = {}
    for name, mesh in scene.parts.items():
        if name == "collision" or mesh.n_faces == 0:
            continue
        gid = rs.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(mesh.vertices, np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(mesh.faces, np.uint32)),
        )
        ids[name] = gid
    w = 2 * rows
    yy, xx = np.mgrid[0:rows, 0:w] + 0.5
    d = pixel_to_direction(xx, yy, w, rows).astype(np.float32)
    rays = np.concatenate([np.zeros_like(d), d], axis=-1).reshape(-1, 6)
    hit = rs.cast_rays(o3d.core.Tensor(rays))
    gid = hit["geometry_ids"].numpy().reshape(rows, w)
    t = hit["t_hit"].numpy().reshape(rows, w)
    keep = gid == ids.get("sky", -2)
    if far_plane > 0:
        keep |= np.isfinite(t) & (t >= KEEP_FRACTION * far_plane)
    return keep


def _fill_down(img: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each unkept pixel takes the nearest kept pixel above it in its column, else below, else the mean."""
    H, W = keep.shape
    rows = np.arange(H)[:, None]
    above = np.maximum.accumulate(np.where(keep, rows, -1), axis=0)  # last kept row at or above
    below = np.minimum.accumulate(np.where(keep, rows, H)[::-1], axis=0)[::-1]  # first kept at or below
    src = np.where(above >= 0, above, below)
    cols = np.broadcast_to(np.arange(W)[None, :], (H, W))
    has = src < H
    filled = np.empty(img.shape, np.float64)
    filled[has] = img[src[has], cols[has]]
    filled[~has] = img[keep].mean(axis=0)
    # Soften the vertical streaks a column-wise fill leaves: box-blur the filled pixels along
    # rows (wrapping at the seam) over 1/32 of the width.
    k = max(1, W // 32)
    pad = np.concatenate([filled[:, -k:], filled, filled[:, :k]], axis=1)
    c = np.cumsum(np.pad(pad, ((0, 0), (1, 0), (0, 0))), axis=1)
    blurred = (c[:, 2 * k + 1 :] - c[:, : -2 * k - 1]) / (2 * k + 1)
    return np.where(keep[..., None], img, np.clip(np.rint(blurred), 0, 255)).astype(np.uint8)


def sky_environment(scene: MeshScene, cfg: ExportSettings) -> np.ndarray | None:
    """The environment image, or None when the scene has no textured sky part (indoor scenes).

    The sky part's texture is the panorama itself (``mesh.sheet.sky_dome`` textures the dome with
    it through equirect UVs), so it is the latlong source; the dome geometry only decides which
    pixels are sky.

    Args:
        scene: the world as built (it is fitted to ``cfg.far_plane`` here, as the writers do).
        cfg: export settings (far plane, largest texture side).

    Returns:
        8-bit sRGB latlong, worldgen's panorama mapping, width = min(sky texture width,
        ``cfg.max_texture_size``), height = width / 2. [H, 2H, 3] uint8
    """
    sky = scene.parts.get("sky")
    if sky is None or sky.texture is None or sky.n_faces == 0:
        return None
    if sky.texture.shape[1] != 2 * sky.texture.shape[0]:
        # The meshers texture the dome with the whole panorama (2:1, equirect UVs); any other
        # texture is not a latlong image and cannot serve as the environment.
        log.warning("the sky part's texture is not a 2:1 panorama; no sky.png / sky.hdr written")
        return None
    fitted, _ = fit_far_plane(scene, cfg.far_plane)
    tex = sky.texture
    W = min(tex.shape[1], cfg.max_texture_size)
    W -= W % 2
    H = W // 2
    if tex.shape[:2] != (H, W):
        from PIL import Image

        tex = np.asarray(Image.fromarray(tex).resize((W, H), Image.Resampling.BOX))
    rows = min(MASK_ROWS, H)
    keep = _kept_pixels(fitted, cfg.far_plane, rows)
    if not keep.any():
        return None
    # Nearest upsampling of the ray mask to the image grid (pixel centres).
    ri = np.minimum(((np.arange(H) + 0.5) * rows / H).astype(int), rows - 1)
    ci = np.minimum(((np.arange(W) + 0.5) * 2 * rows / W).astype(int), 2 * rows - 1)
    keep = keep[ri][:, ci]
    return _fill_down(tex, keep)


def usd_latlong(img: np.ndarray) -> np.ndarray:
    """The image in the OpenEXR latlong convention of UsdLux DomeLight: turned half a turn (centre +Z)."""
    return np.roll(img, img.shape[1] // 2, axis=1)


def encode_png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img), "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def encode_hdr(linear: np.ndarray) -> bytes:
    """Radiance RGBE (.hdr) of linear colours, run-length scanlines of literal runs only.

    Literal runs (a count byte <= 128, then that many bytes) are valid RLE, which keeps readers
    from mistaking a flat first pixel for an RLE marker. Width must lie in 8..32767.

    Args:
        linear: linear-light RGB, >= 0. [H, W, 3] float
    """
    rgb = np.maximum(np.asarray(linear, np.float64), 0.0)
    H, W = rgb.shape[:2]
    if not 8 <= W <= 32767:
        raise ValueError(f"RGBE scanlines need a width in 8..32767, got {W}")
    m = rgb.max(axis=2)
    mant, exp = np.frexp(m)  # m = mant * 2**exp, mant in [0.5, 1)
    scale = np.where(m > 1e-32, mant * 256.0 / np.maximum(m, 1e-300), 0.0)
    rgbe = np.zeros((H, W, 4), np.uint8)
    rgbe[..., :3] = np.clip(np.floor(rgb * scale[..., None]), 0, 255).astype(np.uint8)
    rgbe[..., 3] = np.where(m > 1e-32, exp + 128, 0).astype(np.uint8)
    planes = rgbe.transpose(0, 2, 1)  # [H, 4, W]: RLE stores each channel's scanline in turn
    n_full, rem = divmod(W, 128)
    pieces = []
    if n_full:
        full = planes[..., : n_full * 128].reshape(H, 4, n_full, 128)
        pieces.append(np.concatenate([np.full((H, 4, n_full, 1), 128, np.uint8), full], axis=3).reshape(H, 4, -1))
    if rem:
        tail = planes[..., n_full * 128 :]
        pieces.append(np.concatenate([np.full((H, 4, 1), rem, np.uint8), tail], axis=2))
    body = np.concatenate(pieces, axis=2).reshape(H, -1)
    marker = np.broadcast_to(np.array([2, 2, W >> 8, W & 255], np.uint8), (H, 4))
    data = np.concatenate([marker, body], axis=1).tobytes()
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\nEXPOSURE=1.0\n\n-Y {H} +X {W}\n".encode("ascii")
    return header + data


def sky_files(scene: MeshScene, cfg: ExportSettings) -> dict[str, bytes]:
    """``{"sky.png": ..., "sky.hdr": ...}``, or {} when the scene has no sky."""
    env = sky_environment(scene, cfg)
    if env is None:
        return {}
    lin = srgb_to_linear(env.astype(np.float32) / 255.0)
    return {"sky.png": encode_png(env), "sky.hdr": encode_hdr(lin)}
