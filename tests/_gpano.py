"""Photo Sphere (GPano) XMP as phones and exiftool write it, for the tests of partial panoramas."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

NS = "http://ns.google.com/photos/1.0/panorama/"


def gpano_xmp(
    full=(400, 200), left=0, top=50, size=(400, 90), *, elements=False, prefix="GPano", projection="equirectangular"
) -> str:
    """An XMP packet as phones and exiftool write it: properties as attributes or as elements."""
    fields = {
        "ProjectionType": projection,
        "FullPanoWidthPixels": full[0],
        "FullPanoHeightPixels": full[1],
        "CroppedAreaLeftPixels": left,
        "CroppedAreaTopPixels": top,
        "CroppedAreaImageWidthPixels": size[0],
        "CroppedAreaImageHeightPixels": size[1],
    }
    if elements:
        body = "".join(f"<{prefix}:{k}>{v}</{prefix}:{k}>" for k, v in fields.items())
        desc = f'<rdf:Description rdf:about="" xmlns:{prefix}="{NS}">{body}</rdf:Description>'
    else:
        attrs = " ".join(f'{prefix}:{k}="{v}"' for k, v in fields.items())
        desc = f'<rdf:Description rdf:about="" xmlns:{prefix}="{NS}" {attrs}/>'
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{desc}</rdf:RDF></x:xmpmeta>"
    )


def with_xmp(rgb: np.ndarray, xmp: str, fmt: str) -> bytes:
    """``rgb`` encoded as ``fmt`` ("png", "jpg", "webp", "tif") with the XMP packet where each format
    keeps it (PNG iTXt, JPEG APP1, WebP, TIFF tag 700)."""
    im, buf = Image.fromarray(rgb), io.BytesIO()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)
        im.save(buf, "PNG", pnginfo=info)
    elif fmt in ("tif", "tiff"):
        im.save(buf, "TIFF", tiffinfo={700: xmp.encode()})
    else:
        im.save(buf, {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}[fmt], xmp=xmp.encode(), quality=95)
    return buf.getvalue()


def save_with_xmp(path, rgb: np.ndarray, xmp: str) -> None:
    """Write ``rgb`` to ``path`` with the XMP packet, in the format its suffix names (see :func:`with_xmp`)."""
    Path(path).write_bytes(with_xmp(rgb, xmp, str(path).rsplit(".", 1)[-1].lower()))
