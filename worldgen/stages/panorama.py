"""Panorama stage: where the 360° image comes from.

Built-in backend ``file``: a user's equirect panorama (``--panorama``), with optional depth
(``--depth``) delivered alongside as the ``given_depth`` artifact. A *partial* panorama (a phone's
photo sphere or sweep that did not cover the whole sphere, saved as the covered rectangle with
Photo Sphere XMP metadata saying where it lies: worldgen.geometry.gpano) is put in its place in the
full equirect, and the rest of the sphere becomes a soft backdrop marked as such in the
``semantics`` artifact, as a photo world's is (worldgen.stages.photo): the mesh stage keeps it out
of the collision mesh. Text prompts are served by the ``procedural`` backend (worldgen.procedural).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..geometry.gpano import PanoCrop, crop_summary, place_crop, read_pano_crop
from ..io import read_depth, read_image_notes
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import DepthMap, Panorama, SemanticLayers
from .photo import BACKDROP_ID, PHOTO_CLASSES, UNKNOWN_ID

log = logging.getLogger(__name__)

MIN_WIDTH = 64
"""Narrowest panorama accepted (64x32); a smaller one is upscaled to it with a note."""

PARTIAL_FEATHER_DEG = 2.0
"""Cross-fade from a partial panorama into its backdrop, degrees (as a photo's, worldgen.stages.photo)."""

PARTIAL_BLUR_DEG = 6.0
"""Blur of a partial panorama's backdrop, degrees: it must read as out of focus, not as content."""


@dataclass(frozen=True)
class FileConfig:
    """Options of the ``file`` panorama backend.

    Args:
        max_width: working width, pixels; a wider panorama (and its depth) is area-averaged
            down to it with a note, so a 16384x8192 file costs the preset's memory, not its own
            (presets: fast 2048, balanced 4096, quality 8192).
    """

    max_width: int = 4096


def load_user_panorama(
    image_path: str, depth_path: str | None = None, max_width: int | None = None
) -> tuple[Panorama, DepthMap | None, SemanticLayers | None, list[str]]:
    """Read a user panorama and optional depth, checking that they fit together.

    Args:
        image_path: colour image, equirectangular, width = 2 x height (8/16-bit, greyscale,
            palette, RGBA, CMYK, EXIF-rotated, WebP, OpenEXR...: see worldgen.io.read_image_notes),
            or a partial equirect with Photo Sphere XMP (GPano) metadata saying where it lies.
        depth_path: Euclidean depth for the same pixels: .npy or .exr in metres, or 16-bit .png
            in millimetres; +inf or 0 marks sky. A 2:1 depth of another size is resampled
            (nearest pixel) to the panorama's size with a note.
        max_width: scale a wider panorama down to this width (None = keep).

    Returns:
        A tuple: **panorama**, **depth** (None without ``depth_path``), **semantics** (a partial
        panorama's ``backdrop``, else None) and **notes** (one line per conversion made).
    """
    rgb, notes = read_image_notes(image_path)
    name = Path(image_path).name
    h, w = rgb.shape[:2]
    crop = read_pano_crop(image_path)
    if crop is not None and not crop.is_full:
        if depth_path is not None:
            raise InputError(
                f"panorama {name} covers only part of the sphere (GPano crop) and --depth is not read for a "
                "partial panorama; give a full 2:1 panorama with its depth, or leave --depth out"
            )
        pano, sem, more = partial_panorama(rgb, crop, name, max_width)
        return pano, None, sem, notes + more
    if w != 2 * h:
        why = (
            "and carries no photo-sphere (GPano) metadata saying where it lies in the sphere"
            if crop is None
            else "though its photo-sphere (GPano) metadata says it covers the whole sphere"
        )
        raise InputError(
            f"panorama {name} is {w}x{h}, not 2:1, {why}; an equirectangular panorama must be twice as wide "
            f"as it is high (e.g. {2 * h}x{h})"
        )
    if max_width is not None and w > max_width:
        rgb = _resize(rgb, max_width)
        notes.append(f"{name}: {w}x{h} scaled to the preset's working size {max_width}x{max_width // 2}")
    elif w < MIN_WIDTH:
        rgb = _resize(rgb, MIN_WIDTH)
        notes.append(f"{name}: {w}x{h} upscaled to the smallest working size {MIN_WIDTH}x{MIN_WIDTH // 2}")
    h, w = rgb.shape[:2]
    pano = Panorama.from_uint8(rgb)
    if depth_path is None:
        return pano, None, None, notes
    d = read_depth(depth_path)
    dname = Path(depth_path).name
    if d.shape != (h, w):
        if d.shape[1] != 2 * d.shape[0]:
            raise InputError(
                f"depth {dname} is {d.shape[1]}x{d.shape[0]}, not 2:1 like the panorama ({w}x{h}); "
                "give depth for the same equirectangular view"
            )
        notes.append(f"{dname}: {d.shape[1]}x{d.shape[0]} depth resampled (nearest pixel) to {w}x{h}")
        d = _nearest(d, h, w)
    return pano, DepthMap.from_array(d), None, notes


def partial_panorama(
    rgb: np.ndarray, crop: PanoCrop, name: str, max_width: int | None = None
) -> tuple[Panorama, SemanticLayers, list[str]]:
    """A partial panorama in its place in the full equirect, the rest of the sphere a soft backdrop.

    The full equirect is as wide as the image's own scale makes it (``crop.full_width`` times the
    image's width over ``crop.width``), at most ``max_width`` and at least :data:`MIN_WIDTH`.
    See :func:`crop_backdrop` for what fills the rest.

    Args:
        rgb: the partial panorama as read. [h, w, 3] uint8
        crop: where it lies (worldgen.geometry.gpano).
        name: the file's name, for notes.
        max_width: the working width's cap, pixels (None = none).

    Returns:
        A tuple: the **panorama** (sRGB), **semantics** (``unknown`` on the image's own pixels,
        ``backdrop`` elsewhere) and **notes**.
    """
    h_img, w_img = rgb.shape[:2]
    if abs(math.log((w_img / h_img) / (crop.width / crop.height))) > 0.02:
        # (an image cropped, padded or rotated since the metadata was written would be stretched)
        raise InputError(
            f"panorama {name} is {w_img}x{h_img} but its photo-sphere metadata describes a {crop.width}x{crop.height} "
            "image (GPano:CroppedAreaImageWidthPixels x HeightPixels), of another shape; fix the metadata or give "
            "the full 2:1 equirect"
        )
    own = crop.full_width * w_img / crop.width
    width = int(round(own / 2)) * 2
    if max_width is not None:
        width = min(width, max_width)
    width = max(width, MIN_WIDTH)
    placed, covered = place_crop(rgb, crop, width)
    img = crop_backdrop(placed, covered, PARTIAL_BLUR_DEG, PARTIAL_FEATHER_DEG)
    ids = np.where(covered, UNKNOWN_ID, BACKDROP_ID).astype(np.uint8)
    notes = [
        f"{name}: a partial panorama, {crop_summary(crop)} (GPano metadata), placed in a {width}x{width // 2} "
        "equirect; the rest of the sphere is a soft backdrop, kept out of the collision mesh"
    ]
    return Panorama(img, "srgb"), SemanticLayers(ids, PHOTO_CLASSES), notes


BACKDROP_WIDTH = 512
"""Width at which a partial panorama's backdrop is made, then resampled to the panorama's: it is
blurred 6° (8.5 pixels at this width), so nothing finer is lost, and an 8192-wide panorama's
backdrop costs a second and ~30 bytes per pixel, not two minutes and 3.7 GB (a 136-pixel blur and a
distance transform at full size)."""


def crop_backdrop(placed: np.ndarray, covered: np.ndarray, blur_deg: float, feather_deg: float) -> np.ndarray:
    """Fill the sphere around a partial panorama (a rectangle in longitude and latitude) with a backdrop.

    Unlike a photo's backdrop (worldgen.stages.photo), every column of a partial panorama was seen
    round the horizon, or a wide arc of them: what lies above it continues each column's own top
    colours (a ceiling over a room's walls, sky over a skyline), fading to their mean at the zenith
    where the columns meet; below it, each column's bottom colours fading to their mean at the nadir;
    a gap in longitude blends, row by row, from the colours of the panorama's right edge to those of
    its left edge. The backdrop is made at :data:`BACKDROP_WIDTH` and blurred there, and the panorama
    cross-fades into it over ``feather_deg`` inside its border (columns wrap round the sphere).

    Args:
        placed: the partial panorama in place, anything outside ``covered``. [H, W, 3] uint8
        covered: its pixels, one rectangle in longitude (it may wrap) and latitude. [H, W] bool
        blur_deg: Gaussian sigma of the backdrop, degrees.
        feather_deg: width of the cross-fade, degrees.

    Returns:
        The full panorama, in [0, 1]. [H, W, 3] float32
    """
    from PIL import Image

    h, w = covered.shape
    r0, r1, cols, start = _rectangle(covered)
    cw = int(cols.sum())
    # the backdrop at a small size: the image area-averaged over its own pixels only
    ws = min(w, BACKDROP_WIDTH)
    hs = ws // 2

    def small(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((ws, hs), Image.Resampling.BOX))

    cov_s = small(covered)
    img_s = np.stack([small(placed[..., c] * covered) for c in range(3)], -1) / 255.0
    inside = cov_s > 0.5
    img_s = np.where(inside[..., None], img_s / np.maximum(cov_s, 1e-6)[..., None], 0.0).astype(np.float32)
    back = _fill_around(img_s, inside)
    sigma = blur_deg * ws / 360.0
    if sigma > 0:
        pad = min(ws, int(3 * sigma) + 1)
        wrapped = np.concatenate([back[:, -pad:], back, back[:, :pad]], axis=1)
        back = ndimage.gaussian_filter(wrapped, sigma=(sigma, sigma, 0), mode="nearest")[:, pad:-pad]
    # resampled to full size (bilinear, the columns wrapping round the sphere) and cross-faded with the
    # panorama inside the rectangle's border (the distance to its nearest edge; a full circle of
    # columns has no left or right edge), in blocks of rows so that no temporary is panorama-sized
    y = np.clip((np.arange(h) + 0.5) * hs / h - 0.5, 0, hs - 1)
    y0 = np.floor(y).astype(np.int64)
    ty = (y - y0).astype(np.float32)
    x = (np.arange(w) + 0.5) * ws / w - 0.5
    x0 = np.floor(x).astype(np.int64)
    tx = (x - x0).astype(np.float32)[None, :, None]
    xa, xb = x0 % ws, (x0 + 1) % ws
    feather = max(feather_deg * w / 360.0, 1e-6)
    k = np.arange(h) - r0
    a_row = np.where((k >= 0) & (k <= r1 - r0), np.minimum(k + 1, r1 - r0 + 1 - k), 0) / feather
    a_col = np.full(w, np.inf)
    if cw < w:
        j = np.arange(cw)
        a_col[(start + j) % w] = np.minimum(j + 1, cw - j) / feather
    a_col[~cols] = 0.0
    out = np.empty((h, w, 3), np.float32)
    for b0 in range(0, h, 256):
        b1 = min(h, b0 + 256)
        t = ty[b0:b1, None, None]
        rows_s = back[y0[b0:b1]] * (1 - t) + back[np.minimum(y0[b0:b1] + 1, hs - 1)] * t  # [rows, ws, 3]
        blk = out[b0:b1]
        np.multiply(rows_s[:, xa], 1 - tx, out=blk)
        blk += rows_s[:, xb] * tx
        alpha = np.clip(np.minimum(a_row[b0:b1, None], a_col[None, :]), 0, 1).astype(np.float32)[..., None]
        if alpha.any():
            blk *= 1 - alpha
            blk += placed[b0:b1].astype(np.float32) * (alpha / 255.0)
    return np.clip(out, 0, 1, out=out)


def _rectangle(covered: np.ndarray) -> tuple[int, int, np.ndarray, int]:
    """A rectangle in latitude and (circular) longitude given as a mask [H, W] bool: its first and
    last rows, its columns [W] bool, and the column its run starts at (after a gap; 0 round the
    whole circle)."""
    rows = np.nonzero(covered.any(1))[0]
    r0, r1 = int(rows[0]), int(rows[-1])
    cols = covered[r0]
    start = 0 if cols.all() else int(np.nonzero(cols & ~np.roll(cols, 1))[0][0])
    return r0, r1, cols, start


def _fill_around(img: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The backdrop of :func:`crop_backdrop` before its blur: the rectangle ``covered`` kept, the rest
    filled from its edges. img [H, W, 3] float32 (anything outside), covered [H, W] bool. [H, W, 3]"""
    h, w = covered.shape
    r0, r1, cols, start = _rectangle(covered)
    out = img.astype(np.float32).copy()
    if not cols.all():
        cw = int(cols.sum())
        edge = max(1, min(cw // 50, 8))  # a few columns, not the single edge pixel
        left = out[r0 : r1 + 1, (start + np.arange(edge)) % w].mean(1)
        right = out[r0 : r1 + 1, (start + cw - 1 - np.arange(edge)) % w].mean(1)
        gap = w - cw
        t = (np.arange(1, gap + 1) / (gap + 1))[None, :, None]
        out[r0 : r1 + 1, (start + cw + np.arange(gap)) % w] = right[:, None] * (1 - t) + left[:, None] * t
    band = max(1, min((r1 - r0 + 1) // 20, 16))
    above, below = np.arange(r0), np.arange(r1 + 1, h)
    for fill, edge_rows, t in (
        (above, slice(r0, r0 + band), (r0 - above) / max(r0, 1)),  # 1 at the zenith
        (below, slice(r1 + 1 - band, r1 + 1), (below - r1) / max(h - 1 - r1, 1)),  # 1 at the nadir
    ):
        if fill.size:
            per_col = out[edge_rows].mean(0)  # [W, 3]
            t = t[:, None, None]
            out[fill] = per_col[None] * (1 - t) + per_col.mean(0)[None, None] * t
    return out


def _resize(rgb: np.ndarray, width: int) -> np.ndarray:
    """Area average down (or box-filtered up) to width x width/2. [H, W, 3] uint8"""
    from PIL import Image

    img = Image.fromarray(rgb).resize((width, width // 2), Image.Resampling.BOX)
    return np.asarray(img, np.uint8)


def _nearest(d: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-pixel resampling of a depth map (never mixes a surface with the sky). [h, w]"""
    rows = np.minimum(((np.arange(h) + 0.5) * d.shape[0] / h).astype(np.int64), d.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * d.shape[1] / w).astype(np.int64), d.shape[1] - 1)
    return d[rows[:, None], cols[None, :]]


def _run_file(ctx: StageContext) -> StageResult:
    req = ctx.request
    if req.panorama is None:
        raise InputError("the 'file' panorama backend needs --panorama FILE")
    mw = ctx.config.max_width
    if isinstance(mw, bool) or not isinstance(mw, int) or mw % 2 or not MIN_WIDTH <= mw <= 16384:
        raise InputError(f"panorama max_width {mw!r} must be an even number of pixels in {MIN_WIDTH}..16384")
    pano, depth, sem, notes = load_user_panorama(req.panorama, req.depth, mw)
    for n in notes:
        log.warning(n)
    artifacts: dict = {"panorama": pano}
    if depth is not None:
        artifacts["given_depth"] = depth
    report = {"width": pano.width, "height": pano.height, "with_depth": depth is not None, "notes": notes}
    if sem is not None:  # a partial panorama: its backdrop is marked, as a photo world's
        artifacts["semantics"] = sem
        report["coverage"] = round(float(sem.mask("unknown").mean()), 4)
        report["backdrop"] = "soft backdrop around a partial panorama (class 'backdrop'; not in the collision mesh)"
    return StageResult(artifacts=artifacts, report=report)


register_backend(
    Backend(
        stage="panorama",
        name="file",
        run=_run_file,
        # 2: HDR files (EXR, .hdr) of a display-referred scale are shown at their own exposure
        # 3: a partial panorama with photo-sphere (GPano) metadata is placed in the sphere, not refused
        version="3",
        summary="a user's equirect panorama (--panorama), with optional depth (--depth); a partial one placed by its GPano metadata",
        config=FileConfig,
        presets={"fast": {"max_width": 2048}, "balanced": {}, "quality": {"max_width": 8192}},
    )
)
