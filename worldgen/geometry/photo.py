"""A photo in the 360° sphere: its field of view (from EXIF or the user) and its place in the equirect.

The photo is a pinhole view from the capture point looking forward (-Z, the panorama's centre,
docs/conventions.md) with square pixels and its principal point at the image centre. Its field of
view comes from, in order: the user's ``--fov``; EXIF ``FocalLengthIn35mmFilm``; EXIF
``FocalLength`` with the sensor size from ``FocalPlaneXResolution``; else :data:`DEFAULT_35MM_FOCAL`,
a 28 mm-equivalent lens (the usual phone main camera; ~65° across a 4:3 landscape photo).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import Camera
from .equirect import perspective_to_equirect

DEFAULT_35MM_FOCAL = 28.0
"""Focal length (35 mm equivalent, mm) assumed when neither --fov nor EXIF gives the field of view."""

_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
"""35 mm equivalence is defined on the diagonal: a 35 mm-equivalent focal length f sees the image
diagonal at the angle a 36x24 mm frame's diagonal has behind a lens of focal length f."""

_WIDEST_FRAME = 2.4
"""Width / height of the widest camera frame (21:9 video, 2.39:1 cinema): a wider photo was stitched or cropped."""

# EXIF tags (Exif IFD, 0x8769) and their meaning.
_TAG_ORIENTATION = 0x0112
_TAG_EXIF_IFD = 0x8769
_TAG_FOCAL = 0x920A
_TAG_FOCAL_35 = 0xA405
_TAG_FP_XRES = 0xA20E
_TAG_FP_UNIT = 0xA210
_TAG_EXIF_WIDTH = 0xA002
_TAG_EXIF_HEIGHT = 0xA003
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # FocalPlaneResolutionUnit -> mm per unit


def read_photo(path: str | os.PathLike, notes: list[str] | None = None) -> np.ndarray:
    """Read a photo as [H, W, 3] uint8 sRGB, upright: the EXIF orientation is applied.

    The same reader as panoramas (:func:`worldgen.io.read_image_notes`): 16-bit, greyscale, palette,
    RGBA, CMYK, WebP, EXR/HDR are converted, and a missing, empty, corrupt or oversized file is
    refused in one line. ``notes``, when given, receives the reader's one-line notes (what was
    converted; the first frame of an animated or multi-page file).
    """
    from ..io import read_image_notes

    p = Path(path)
    rgb, read_notes = read_image_notes(p)
    if notes is not None:
        notes.extend(read_notes)
    if min(rgb.shape[:2]) < 8:
        raise InputError(f"photo {p.name} is {rgb.shape[1]}x{rgb.shape[0]} pixels; give a photo at least 8x8")
    return rgb


def photo_fov(
    path: str | os.PathLike, fov_deg: float | None = None, notes: list[str] | None = None
) -> tuple[float, str]:
    """Horizontal field of view of the upright photo, degrees, and how it was found.

    EXIF values that give a field of view outside [1, 179] degrees (a FocalLengthIn35mmFilm of
    65535, a focal plane resolution in the wrong unit...) are garbage, not optics: they are skipped
    and the next source is used, with a note saying so.

    Args:
        path: the photo file.
        fov_deg: the user's value (--fov), which wins.
        notes: when given, receives one line per thing the user should know (an EXIF value skipped,
            a photo wider than any camera frame, a 2:1 image that may be a 360° panorama).

    Returns:
        A tuple: **fov** in (0, 180) degrees across the upright photo's width, and **how**: one of
        "--fov", "exif-35mm", "exif-focal+sensor", "default".
    """
    if fov_deg is not None:
        if not 1.0 <= fov_deg <= 179.0:
            raise InputError(f"--fov {fov_deg} must lie in [1, 179] degrees (the photo's horizontal field of view)")
        return float(fov_deg), "--fov"
    from PIL import Image, UnidentifiedImageError

    notes = [] if notes is None else notes
    try:
        with Image.open(path) as im:
            raw_w, raw_h = im.size
            exif = im.getexif()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"cannot read photo {Path(path).name} ({type(e).__name__}); check the file") from e
    ifd = exif.get_ifd(_TAG_EXIF_IFD)
    swap = exif.get(_TAG_ORIENTATION, 1) in (5, 6, 7, 8)  # rotated by 90°: width and height trade places
    up_w, up_h = (raw_h, raw_w) if swap else (raw_w, raw_h)
    aspect = up_w / up_h
    if aspect > _WIDEST_FRAME:
        notes.append(
            f"the photo is {aspect:.2f}:1, wider than a camera frame (a stitched or cropped panorama?): "
            "its field of view is a guess; give --fov DEG"
        )
    if abs(aspect - 2.0) < 0.01:
        notes.append("a 2:1 image: if it is a 360° equirectangular panorama, give it with --panorama instead")

    def plausible(fov: float, what: str) -> bool:
        if 1.0 <= fov <= 179.0:
            return True
        notes.append(f"EXIF {what} gives a {fov:.3g}° field of view: ignored")
        return False

    f35 = _positive(ifd.get(_TAG_FOCAL_35))
    if f35 is not None:
        width_mm = _FULL_FRAME_DIAGONAL_MM * up_w / math.hypot(up_w, up_h)
        fov = math.degrees(2 * math.atan(width_mm / (2 * f35)))
        if plausible(fov, f"FocalLengthIn35mmFilm {f35:g} mm"):
            return fov, "exif-35mm"

    focal = _positive(ifd.get(_TAG_FOCAL))
    xres = _positive(ifd.get(_TAG_FP_XRES))
    unit = _UNIT_MM.get(_int_or(ifd.get(_TAG_FP_UNIT) or 2, 0))  # absent: inches (EXIF's default)
    exif_w = _positive(ifd.get(_TAG_EXIF_WIDTH))
    if focal is not None and xres is not None and (unit is None or exif_w is None):
        # The focal plane resolution counts the camera's own pixels. PixelXDimension (mandatory in
        # a camera's JPEG) says how wide the camera's image was; without it (an editor dropped it
        # on export, often while resizing) this file's width is no measure of the sensor: a 5184 px
        # frame exported at 2000 px would read as a 2.6x narrower view.
        why = "no FocalPlaneResolutionUnit it knows" if unit is None else "no PixelXDimension (an edited copy?)"
        notes.append(
            f"EXIF FocalLength {focal:g} mm with FocalPlaneXResolution but {why}: sensor size unknown, ignored"
        )
    elif focal is not None and xres is not None:
        # focal plane resolution is in pixels of the EXIF image width; rescale to this file's width
        exif_h = _positive(ifd.get(_TAG_EXIF_HEIGHT))
        if exif_h is not None and raw_w != raw_h and (raw_w > raw_h) != (exif_w > exif_h):
            exif_w = exif_h  # the pixels were turned by 90° (not by the orientation tag): width was height
        f_px = focal * xres / unit * raw_w / exif_w  # focal length in this file's (raw) pixels
        fov = math.degrees(2 * math.atan(up_w / (2 * f_px)))
        if plausible(fov, f"FocalLength {focal:g} mm with FocalPlaneXResolution {xres:g}"):
            return fov, "exif-focal+sensor"

    width_mm = _FULL_FRAME_DIAGONAL_MM * up_w / math.hypot(up_w, up_h)
    return math.degrees(2 * math.atan(width_mm / (2 * DEFAULT_35MM_FOCAL))), "default"


def _int_or(v, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return default


def _positive(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def photo_camera(photo_width: int, photo_height: int, hfov_deg: float) -> Camera:
    """The photo's pinhole camera at the origin looking along -Z (square pixels, centred)."""
    if not 0.0 < hfov_deg < 180.0:
        raise InputError(f"photo field of view {hfov_deg}° must lie in (0, 180)")
    return Camera.perspective(photo_width, photo_height, hfov_deg)


def fit_photo(image: np.ndarray, hfov_deg: float, width: int) -> np.ndarray:
    """The photo reduced (area filter) to about the angular resolution of a panorama ``width`` wide at
    its centre, or as it is when it is not finer than that. Same dtype as ``image`` ([h, w, 3] uint8, or
    float in [0, 1]); a uint8 photo is reduced without any float copy of the full-size image (a 48 MP
    photo would be 576 MB of float32)."""
    img = np.asarray(image)
    h, w = img.shape[:2]
    # Pixels per radian at the photo's centre vs. the panorama's: shrink the photo to match.
    ratio = (width / (2 * math.pi)) / photo_camera(w, h, hfov_deg).fx
    if ratio >= 0.9:
        return img
    from PIL import Image

    nw, nh = max(2, round(w * ratio)), max(2, round(h * ratio))
    as8 = img if img.dtype == np.uint8 else np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    small = np.asarray(Image.fromarray(as8).resize((nw, nh), Image.Resampling.BOX))
    return small if img.dtype == np.uint8 else small.astype(np.float32) / 255.0


def place_photo(image: np.ndarray, hfov_deg: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paste a photo into an equirect panorama, centred on the forward direction (-Z).

    The photo is first reduced (area filter) to about the panorama's angular resolution at its
    centre, so a 12-megapixel photo in a small panorama does not alias.

    Args:
        image: the upright photo. [h, w, 3] uint8, or float in [0, 1]
        hfov_deg: its horizontal field of view, degrees, in (0, 180).
        width: W of the panorama (its height is W/2; W even).

    Returns:
        A tuple: **equirect** [W/2, W, 3] (uint8 for a uint8 photo, else float32; zero outside the
        photo) and **coverage** [W/2, W] bool, True where the pixel's ray passes through the photo.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"a photo must be [h, w, 3], got shape {img.shape}")
    if width < 4 or width % 2:
        raise InputError(f"panorama width {width} must be even and >= 4")
    src = fit_photo(img, hfov_deg, width)
    cam = photo_camera(src.shape[1], src.shape[0], hfov_deg)
    pano, covered = perspective_to_equirect(src.astype(np.float32), cam, width // 2, "bilinear")
    if img.dtype == np.uint8:
        return np.clip(np.round(pano), 0, 255).astype(np.uint8), covered
    return pano.astype(np.float32), covered


__all__ = ["DEFAULT_35MM_FOCAL", "fit_photo", "photo_camera", "photo_fov", "place_photo", "read_photo"]
