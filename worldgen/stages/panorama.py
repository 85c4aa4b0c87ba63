"""Panorama stage: where the 360° image comes from.

Built-in backend ``file``: a user's equirect panorama (``--panorama``), with optional depth
(``--depth``) delivered alongside as the ``given_depth`` artifact. Text prompts are served by the
``procedural`` backend (worldgen.procedural).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import read_depth, read_image
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import DepthMap, Panorama


def load_user_panorama(image_path: str, depth_path: str | None = None) -> tuple[Panorama, DepthMap | None]:
    """Read a user panorama and optional depth, checking that they fit together.

    Args:
        image_path: 8-bit colour image, equirectangular, width = 2 x height.
        depth_path: Euclidean depth for the same pixels: .npy or .exr in metres, or 16-bit .png
            in millimetres; +inf or 0 marks sky.

    Returns:
        A tuple: **panorama** and **depth** (None without ``depth_path``).
    """
    rgb = read_image(image_path)
    h, w = rgb.shape[:2]
    if w != 2 * h:
        raise InputError(
            f"panorama {image_path} is {w}x{h}, not 2:1; an equirectangular panorama must be twice as wide "
            f"as it is high (e.g. {2 * h}x{h})"
        )
    pano = Panorama.from_uint8(rgb)
    if depth_path is None:
        return pano, None
    d = read_depth(depth_path)
    if d.shape != (h, w):
        raise InputError(
            f"depth {depth_path} is {d.shape[1]}x{d.shape[0]} but the panorama is {w}x{h}; "
            "give depth with exactly the panorama's size"
        )
    nan = int(np.isnan(d).sum())
    if nan:
        raise InputError(f"depth {depth_path} holds {nan} NaN value(s); fill them, or mark sky with +inf or 0")
    return pano, DepthMap.from_array(d)


def _run_file(ctx: StageContext) -> StageResult:
    req = ctx.request
    if req.panorama is None:
        raise InputError("the 'file' panorama backend needs --panorama FILE")
    pano, depth = load_user_panorama(req.panorama, req.depth)
    artifacts: dict = {"panorama": pano}
    if depth is not None:
        artifacts["given_depth"] = depth
    return StageResult(
        artifacts=artifacts,
        report={"width": pano.width, "height": pano.height, "with_depth": depth is not None},
    )


register_backend(
    Backend(
        stage="panorama",
        name="file",
        run=_run_file,
        summary="a user's equirect panorama (--panorama), with optional depth (--depth)",
    )
)
