"""Panorama stage: where the 360° image comes from.

Built-in backend ``file``: a user's equirect panorama (``--panorama``), with optional depth
(``--depth``) delivered alongside as the ``given_depth`` artifact. Text prompts are served by the
``procedural`` backend (worldgen.procedural).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_depth, read_image_notes
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import DepthMap, Panorama

log = logging.getLogger(__name__)

MIN_WIDTH = 64
"""Narrowest panorama accepted (64x32); a smaller one is upscaled to it with a note."""


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
) -> tuple[Panorama, DepthMap | None, list[str]]:
    """Read a user panorama and optional depth, checking that they fit together.

    Args:
        image_path: colour image, equirectangular, width = 2 x height (8/16-bit, greyscale,
            palette, RGBA, CMYK, EXIF-rotated, WebP, OpenEXR...: see worldgen.io.read_image_notes).
        depth_path: Euclidean depth for the same pixels: .npy or .exr in metres, or 16-bit .png
            in millimetres; +inf or 0 marks sky. A 2:1 depth of another size is resampled
            (nearest pixel) to the panorama's size with a note.
        max_width: scale a wider panorama down to this width (None = keep).

    Returns:
        A tuple: **panorama**, **depth** (None without ``depth_path``) and **notes** (one line
        per conversion made).
    """
    rgb, notes = read_image_notes(image_path)
    name = Path(image_path).name
    h, w = rgb.shape[:2]
    if w != 2 * h:
        raise InputError(
            f"panorama {name} is {w}x{h}, not 2:1; an equirectangular panorama must be twice as wide "
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
        return pano, None, notes
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
    return pano, DepthMap.from_array(d), notes


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
    pano, depth, notes = load_user_panorama(req.panorama, req.depth, mw)
    for n in notes:
        log.warning(n)
    artifacts: dict = {"panorama": pano}
    if depth is not None:
        artifacts["given_depth"] = depth
    return StageResult(
        artifacts=artifacts,
        report={"width": pano.width, "height": pano.height, "with_depth": depth is not None, "notes": notes},
    )


register_backend(
    Backend(
        stage="panorama",
        name="file",
        run=_run_file,
        # 2: HDR files (EXR, .hdr) of a display-referred scale are shown at their own exposure
        version="2",
        summary="a user's equirect panorama (--panorama), with optional depth (--depth)",
        config=FileConfig,
        presets={"fast": {"max_width": 2048}, "balanced": {}, "quality": {"max_width": 8192}},
    )
)
