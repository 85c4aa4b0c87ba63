"""The ``photo`` panorama backend: one photo placed in the sphere, the rest a soft backdrop.

The photo keeps its field of view (``--fov``, else EXIF, else a 28 mm-equivalent default; see
worldgen.geometry.photo) and looks forward (-Z). Outside its frustum nothing is known, and this
backend does not invent it: the rest of the sphere is a *backdrop* extended from the photo's
borders: its rows' average colours carried around the sphere, its top edge fading to a sky
colour above, its bottom edge to a ground colour below, and everything outside the photo
blurred. The ``semantics`` artifact marks those pixels with the class ``backdrop`` so that later
stages can tell them apart (the mesh stage keeps them out of the collision mesh); the photo's own
pixels are ``unknown``. A generative photo-to-360 backend (role ``fill``) replaces this one when
configured.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..depth.sky import blue_sky_weight
from ..errors import InputError
from ..geometry.photo import fit_photo, photo_fov, place_photo, read_photo
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import SEMANTIC_CLASSES, Panorama, SemanticLayers

log = logging.getLogger(__name__)

PHOTO_CLASSES: tuple[str, ...] = (*SEMANTIC_CLASSES, "unknown", "backdrop")
"""Semantic classes of a photo world: the default table plus the photo's pixels and the backdrop."""
UNKNOWN_ID = len(SEMANTIC_CLASSES)
BACKDROP_ID = UNKNOWN_ID + 1


@dataclass(frozen=True)
class PhotoConfig:
    """Options of the photo backend.

    Args:
        width: panorama width, pixels (height = width / 2); even, 64..16384 (2048).
        feather_deg: width of the cross-fade from the photo into the backdrop, degrees (2).
        blur_deg: blur of the backdrop, degrees (6): it must read as out of focus, not as content.
        top_sky_share: the backdrop above the photo continues the blue sky seen along the photo's
            top edge (the mean colour of its clear-blue pixels) where at least this share of the top
            band is such sky (0.05; above 1 = never: the band's mean colour, as before).
    """

    width: int = 2048
    feather_deg: float = 2.0
    blur_deg: float = 6.0
    top_sky_share: float = 0.05

    def __post_init__(self) -> None:
        # a bad --set value fails when the config is built, before anything is written (it was a
        # TypeError traceback: --set panorama.width=abc, panorama.blur_deg=nan)
        w = self.width
        if isinstance(w, bool) or not isinstance(w, int) or w % 2 or not 64 <= w <= 16384:
            raise InputError(f"photo width {w!r} must be an even number of pixels in 64..16384")
        for name, hi in (("feather_deg", 45.0), ("blur_deg", 90.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= hi:
                raise InputError(f"panorama.{name} must be a number of degrees in [0, {hi:g}], not {v!r}")
        v = self.top_sky_share
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < v <= 2.0:
            raise InputError(f"panorama.top_sky_share must be a share in (0, 2] (above 1: never), not {v!r}")


def backdrop(
    pano: np.ndarray,
    covered: np.ndarray,
    blur_px: float,
    top_colour: np.ndarray | None = None,
    bottom_colour: np.ndarray | None = None,
) -> np.ndarray:
    """Extend the photo's colours over the uncovered sphere.

    Args:
        pano: the photo placed in the equirect, float in [0, 1] (anything outside ``covered``). [H, W, 3]
        covered: pixels the photo covers. [H, W] bool
        blur_px: Gaussian sigma of the backdrop, pixels.
        top_colour, bottom_colour: mean colours of the photo's top and bottom bands (a few
            rows, not the single extreme pixel of the curved edge); default: the edge rows' means. [3]

    Returns:
        The backdrop for every pixel. [H, W, 3] float32
    """
    h, w = covered.shape
    rows_cov = covered.any(1)
    if not rows_cov.any():
        raise InputError("the photo covers no pixel of the panorama; give a larger --fov or a larger photo")
    cnt = covered.sum(1)
    prof = np.where(rows_cov[:, None], (pano * covered[..., None]).sum(1) / np.maximum(cnt, 1)[:, None], 0)
    top, bottom = int(np.argmax(rows_cov)), int(h - 1 - np.argmax(rows_cov[::-1]))
    if top_colour is not None:
        prof[top] = top_colour
    if bottom_colour is not None:
        prof[bottom] = bottom_colour
    # above the photo: its top colour fading to a lighter sky colour; below: to its bottom colour
    sky_col = np.clip(prof[top] * 0.7 + 0.3 * np.array([0.75, 0.82, 0.92]), 0, 1)
    for_rows = prof.copy()
    t_up = np.clip((top - np.arange(h)) / max(top, 1), 0, 1)[:, None]
    for_rows = np.where((np.arange(h) < top)[:, None], prof[top] * (1 - t_up) + sky_col * t_up, for_rows)
    for_rows = np.where((np.arange(h) > bottom)[:, None], prof[bottom], for_rows)
    back = np.broadcast_to(for_rows[:, None, :], (h, w, 3)).astype(np.float32).copy()
    # near the photo's left and right edges, carry its edge colours outwards (fading over 45°)
    cols_cov = covered.any(0)
    lon = 2 * np.pi * (np.arange(w) + 0.5) / w - np.pi
    lon_min, lon_max = lon[cols_cov].min(), lon[cols_cov].max()
    left_col, right_col = int(np.argmax(cols_cov)), int(w - 1 - np.argmax(cols_cov[::-1]))
    fade = math.radians(45)
    for col_edge, lon_edge, sign in ((left_col, lon_min, -1), (right_col, lon_max, 1)):
        edge = pano[:, col_edge]
        ok = covered[:, col_edge]
        edge = np.where(ok[:, None], edge, for_rows)
        dist = np.clip(sign * (lon - lon_edge), 0, None)
        wgt = np.clip(1 - dist / fade, 0, 1) * (sign * (lon - lon_edge) > 0)
        back = back * (1 - wgt[None, :, None]) + edge[:, None, :] * wgt[None, :, None]
    if blur_px > 0:
        pad = int(3 * blur_px) + 1
        wrapped = np.concatenate([back[:, -pad:], back, back[:, :pad]], axis=1)
        wrapped = ndimage.gaussian_filter(wrapped, sigma=(blur_px, blur_px, 0), mode="nearest")
        back = wrapped[:, pad:-pad]
    return np.clip(back, 0, 1).astype(np.float32)


def photo_panorama(photo: np.ndarray, hfov_deg: float, config: PhotoConfig) -> tuple[Panorama, SemanticLayers, dict]:
    """The photo in the sphere plus its backdrop, and the semantics that mark the backdrop.

    Args:
        photo: the upright photo. [h, w, 3] uint8
        hfov_deg: its horizontal field of view, degrees.

    Returns:
        A tuple: **panorama** (sRGB), **semantics** (``unknown`` on the photo, ``backdrop``
        elsewhere) and facts for the manifest.
    """
    width = config.width
    if isinstance(width, bool) or not isinstance(width, int) or width % 2 or not 64 <= width <= 16384:
        raise InputError(f"photo width {width!r} must be an even number of pixels in 64..16384")
    # reduced in uint8 first: the float copy is then panorama-sized, not photo-sized
    placed, covered = place_photo(fit_photo(photo, hfov_deg, width).astype(np.float32) / 255.0, hfov_deg, width)
    h = width // 2
    px_per_deg = width / 360.0
    band = max(1, photo.shape[0] // 20)
    top_c = photo[:band].reshape(-1, 3).mean(0) / 255.0
    # where the photo's top edge shows blue sky between crowns or buildings, the sky above the photo
    # continues that sky, not the band's mean: a mean of dark crowns and a little sky painted a grey
    # zenith over a ring of crowns, which reads as a room (procedural forest 0 was decided indoor at
    # every heading; benchmarks/photo_sky.py)
    top = photo[:band].reshape(-1, 3).astype(np.float32) / 255.0
    wgt = blue_sky_weight(top)
    if wgt.sum() >= config.top_sky_share * len(wgt):
        top_c = (top * wgt[:, None]).sum(0) / wgt.sum()
    bottom_c = photo[-band:].reshape(-1, 3).mean(0) / 255.0
    back = backdrop(placed, covered, config.blur_deg * px_per_deg, top_c, bottom_c)
    # cross-fade over a band inside the photo's border, so no hard seam shows
    inside = ndimage.distance_transform_edt(np.pad(covered, ((1, 1), (0, 0))))[1:-1]
    alpha = np.clip(inside / max(config.feather_deg * px_per_deg, 1e-6), 0, 1)[..., None]
    img = placed * alpha + back * (1 - alpha)
    ids = np.where(covered, UNKNOWN_ID, BACKDROP_ID).astype(np.uint8)
    facts = {
        "width": width,
        "height": h,
        "photo_width": int(photo.shape[1]),
        "photo_height": int(photo.shape[0]),
        "photo_coverage": round(float(covered.mean()), 4),
        "backdrop": "soft backdrop extended from the photo's borders (class 'backdrop'; not in the collision mesh)",
    }
    return Panorama(np.clip(img, 0, 1).astype(np.float32), "srgb"), SemanticLayers(ids, PHOTO_CLASSES), facts


def backdrop_mask(semantics: SemanticLayers | None, shape: tuple[int, int]) -> np.ndarray:
    """Backdrop pixels that are scenery, kept out of the collision mesh: those marked ``backdrop``,
    except the rows below the photo's lowest row. [H, W] bool (none without semantics or that class)

    Below the photo's lower edge, all around, lies the floor under the viewer out to where the photo's
    own ground begins (~4 m for a 44° tall landscape photo at 1.6 m). Its colour is made up, its
    geometry is not: the ground at -eye height is the premise every depth backend fits. Found as a new
    user walking through the GLB: with it left out, the collision mesh began 2.7-8 m in front of the
    capture point, and a player spawned there fell through the world.
    """
    if semantics is None or "backdrop" not in semantics.classes or semantics.ids.shape != tuple(shape):
        return np.zeros(shape, bool)
    mask = semantics.mask("backdrop")
    if "unknown" in semantics.classes:
        rows = np.nonzero(semantics.mask("unknown").any(1))[0]  # the photo's own pixels
        if rows.size:  # the photo is centred on the horizon: these rows all look down
            mask[rows.max() + 1 :] = False
    return mask


def photo_columns(semantics: SemanticLayers | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The columns a photo world's photo covers (class ``unknown`` beside ``backdrop``), or None for
    any other panorama. The depth prior measures a room on them alone: the backdrop carries each of
    the photo's rows round the sphere, a round room whose lines outweighed the photo's own walls. [W] bool"""
    seen = seen_pixels(semantics, shape)
    if seen is None:
        return None
    cols = seen.any(0)
    return cols if cols.any() else None


def seen_pixels(semantics: SemanticLayers | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The pixels a photo world's photo or a partial panorama's image covers (class ``unknown`` beside
    ``backdrop``), None for any other panorama (every pixel seen). The depth stage reads a made-up
    backdrop as no evidence: of a sky overhead (depth.sky.is_indoor) or of sky in the image (depth.sky.seen_sky). [H, W] bool"""
    if semantics is None or semantics.ids.shape != tuple(shape):
        return None
    if "backdrop" not in semantics.classes or "unknown" not in semantics.classes:
        return None
    return semantics.mask("unknown")


def _run(ctx: StageContext) -> StageResult:
    req = ctx.request
    if req.image is None:
        raise InputError("the 'photo' panorama backend needs --image FILE")
    read_notes: list[str] = []
    photo = read_photo(req.image, read_notes)  # what the reader converted (it was dropped for photos)
    notes: list[str] = []
    fov, how = photo_fov(req.image, req.fov, notes)
    pano, sem, facts = photo_panorama(photo, fov, ctx.config)
    for n in read_notes + notes:
        log.warning(n)
    if read_notes:
        facts["notes"] = read_notes  # as the file backend reports a panorama's conversions
    if notes:
        facts["fov_notes"] = notes  # what the user should know about the field of view (EXIF skipped...)
    return StageResult(
        artifacts={"panorama": pano, "semantics": sem},
        report={"fov_deg": round(fov, 3), "fov_from": how, **facts},
    )


register_backend(
    Backend(
        stage="panorama",
        name="photo",
        run=_run,
        # 2: HDR files (EXR, .hdr) of a display-referred scale are shown at their own exposure
        version="2",
        config=PhotoConfig,
        presets={"fast": {"width": 1024}},
        summary="a photo (--image) at its field of view (--fov or EXIF); the rest of the sphere a soft backdrop",
    )
)

__all__ = [
    "PHOTO_CLASSES",
    "PhotoConfig",
    "backdrop",
    "backdrop_mask",
    "photo_columns",
    "photo_panorama",
    "seen_pixels",
]
