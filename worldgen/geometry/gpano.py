"""A partial equirect panorama and its place in the full sphere (Photo Sphere XMP, ``GPano``).

A phone's photo sphere or sweep panorama that did not cover the whole sphere is saved as the
covered rectangle of the equirect it belongs to, not as a 2:1 image, and says where that rectangle
lies in XMP metadata of Google's panorama namespace (http://ns.google.com/photos/1.0/panorama/):
``FullPanoWidthPixels`` x ``FullPanoHeightPixels`` is the full equirect, ``CroppedAreaLeftPixels``
and ``CroppedAreaTopPixels`` the rectangle's corner in it, ``CroppedAreaImageWidthPixels`` x
``CroppedAreaImageHeightPixels`` its size (the file's own size unless it was resized since).
Column 0 of the full equirect is longitude -180° and row 0 the zenith (docs/conventions.md), so
the rectangle's place is a longitude and latitude range; it may wrap past the right edge.

The XMP packet is read as text and the few integer fields picked out with a regular expression:
no XML parser sees the user's file (both ways XMP writes a property, as an attribute or as an
element, are read).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

GPANO_NS = "http://ns.google.com/photos/1.0/panorama/"
"""XMP namespace of Google's Photo Sphere metadata."""

_FIELDS = (
    "FullPanoWidthPixels",
    "FullPanoHeightPixels",
    "CroppedAreaLeftPixels",
    "CroppedAreaTopPixels",
    "CroppedAreaImageWidthPixels",
    "CroppedAreaImageHeightPixels",
)


@dataclass(frozen=True)
class PanoCrop:
    """Where an image lies in its full equirect panorama, in the full panorama's pixels.

    Args:
        full_width, full_height: the full equirect (2:1). pixels
        left, top: the image's top-left corner in it. pixels
        width, height: the image's extent in it. pixels
    """

    full_width: int
    full_height: int
    left: int
    top: int
    width: int
    height: int

    @property
    def is_full(self) -> bool:
        """True when the image covers the whole sphere."""
        return self.width >= self.full_width and self.top <= 0 and self.height >= self.full_height

    def extent_deg(self) -> tuple[float, float]:
        """The image's (longitude, latitude) extent, degrees."""
        return 360.0 * self.width / self.full_width, 180.0 * self.height / self.full_height

    def latitudes_deg(self) -> tuple[float, float]:
        """Latitude of the image's top and bottom edges, degrees."""
        top = 90.0 - 180.0 * self.top / self.full_height
        return top, 90.0 - 180.0 * (self.top + self.height) / self.full_height


def read_xmp(path: str | os.PathLike) -> str | None:
    """The XMP packet of a JPEG, WebP, PNG or TIFF as text, None if it has none (the pixels are not decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            if raw is None and hasattr(im, "tag_v2"):
                raw = im.tag_v2.get(700)  # TIFF's XMP tag
    except Exception:  # an unreadable file is reported by the image reader, in its own words
        return None
    if raw is None:
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)


def _field(xmp: str, name: str) -> str | None:
    # GPano:Name="v" (an attribute of rdf:Description) or <GPano:Name>v</GPano:Name> (an element);
    # the prefix is whatever the packet binds to the namespace, usually GPano
    m = re.search(rf"""\b[\w.-]+:{name}\s*=\s*["']([^"']*)["']""", xmp) or re.search(
        rf"<[\w.-]+:{name}\b[^>]*>([^<]*)</", xmp
    )
    return m.group(1).strip() if m else None


def pano_crop(xmp: str | None, name: str) -> PanoCrop | None:
    """The crop an XMP packet declares, None where it carries no GPano crop.

    Raises:
        InputError: the metadata is there but unusable (not equirectangular, a full panorama that is
            not 2:1, a crop outside it), in one line naming the field.
    """
    if not xmp or GPANO_NS not in xmp:
        return None
    proj = _field(xmp, "ProjectionType")
    if proj is not None and proj.lower() != "equirectangular":
        raise InputError(
            f"panorama {name} is a {proj!r} projection (GPano:ProjectionType); only equirectangular "
            "panoramas are read: re-export it as an equirectangular (2:1) image"
        )
    raw = {f: _field(xmp, f) for f in _FIELDS}
    if all(v is None for v in raw.values()):
        return None
    vals: dict[str, int] = {}
    for f, v in raw.items():
        try:
            vals[f] = int(round(float(v)))  # some writers give "4096.0"
        except (TypeError, ValueError):
            what = "is missing" if v is None else f"is {v!r}, not a whole number"
            raise InputError(
                f"panorama {name}: its photo-sphere metadata GPano:{f} {what}; fix the metadata "
                "(e.g. exiftool) or give the full 2:1 equirect"
            ) from None
    crop = PanoCrop(
        vals["FullPanoWidthPixels"],
        vals["FullPanoHeightPixels"],
        vals["CroppedAreaLeftPixels"],
        vals["CroppedAreaTopPixels"],
        vals["CroppedAreaImageWidthPixels"],
        vals["CroppedAreaImageHeightPixels"],
    )
    fw, fh = crop.full_width, crop.full_height
    if fw <= 0 or fh <= 0 or abs(fw - 2 * fh) > max(2, fw // 500):
        raise InputError(
            f"panorama {name}: its photo-sphere metadata gives a full panorama of {fw}x{fh} "
            "(GPano:FullPanoWidthPixels x FullPanoHeightPixels), not 2:1; fix the metadata or give the full 2:1 equirect"
        )
    slack = max(2, fh // 500)  # writers round the full size and the crop each their own way
    if not (
        0 < crop.width <= fw + slack
        and 0 < crop.height <= fh
        and crop.top >= 0
        and crop.top + crop.height <= fh + slack
    ):
        raise InputError(
            f"panorama {name}: its photo-sphere metadata puts a {crop.width}x{crop.height} image at row "
            f"{crop.top} of a {fw}x{fh} panorama, which does not fit; fix the metadata or give the full 2:1 equirect"
        )
    if not 0 <= crop.left < fw:
        crop = PanoCrop(fw, fh, crop.left % fw, crop.top, crop.width, crop.height)
    return crop


def read_pano_crop(path: str | os.PathLike) -> PanoCrop | None:
    """The GPano crop of an image file, None where it has none. See :func:`pano_crop`."""
    return pano_crop(read_xmp(path), Path(path).name)


def place_crop(rgb: np.ndarray, crop: PanoCrop, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Put a partial panorama in its place in a full equirect of ``width`` x ``width // 2`` pixels.

    The image is area-averaged (or box-filtered up) to its share of the full equirect at that width,
    whatever size it has now (an image resized since capture keeps its place).

    Args:
        rgb: the partial panorama. [h, w, 3] uint8
        crop: its place (:func:`pano_crop`).
        width: the full equirect's width, even. pixels

    Returns:
        A tuple: the **placed** image, zero outside it [H, W, 3] uint8, and the **covered** pixels [H, W] bool.
    """
    from PIL import Image

    h_out = width // 2
    sx, sy = width / crop.full_width, h_out / crop.full_height
    x0 = int(round(crop.left * sx))
    y0 = min(int(round(crop.top * sy)), h_out - 1)
    cw = max(1, min(width, int(round(crop.width * sx))))
    ch = max(1, min(h_out - y0, int(round(crop.height * sy))))
    small = np.asarray(Image.fromarray(rgb).resize((cw, ch), Image.Resampling.BOX), np.uint8)
    placed = np.zeros((h_out, width, 3), np.uint8)
    covered = np.zeros((h_out, width), bool)
    cols = (x0 + np.arange(cw)) % width  # a crop may wrap past longitude +180°
    placed[y0 : y0 + ch, cols] = small
    covered[y0 : y0 + ch, cols] = True
    return placed, covered


def crop_summary(crop: PanoCrop) -> str:
    """One line: how much of the sphere a crop covers, e.g. '360° x 110° of the sphere (latitude +55° to -55°)'."""
    lon, lat = crop.extent_deg()
    top, bottom = crop.latitudes_deg()
    return f"{math.floor(lon + 0.5):.0f}° x {lat:.0f}° of the sphere (latitude {top:+.0f}° to {bottom:+.0f}°)"


__all__ = ["GPANO_NS", "PanoCrop", "crop_summary", "pano_crop", "place_crop", "read_pano_crop", "read_xmp"]
