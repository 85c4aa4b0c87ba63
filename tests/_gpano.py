"""Photo Sphere (GPano) XMP as phones and exiftool write it, for the tests of partial panoramas."""

from __future__ import annotations

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


def save_with_xmp(path, rgb: np.ndarray, xmp: str) -> None:
    """Write ``rgb`` with the XMP packet where each format keeps it (JPEG APP1, PNG iTXt, WebP, TIFF tag 700)."""
    im = Image.fromarray(rgb)
    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)
        im.save(path, pnginfo=info)
    elif suffix in ("tif", "tiff"):
        im.save(path, tiffinfo={700: xmp.encode()})
    else:
        im.save(path, xmp=xmp.encode(), quality=95)
