"""KHR_gaussian_splatting GLB: standard glTF splats for three.js, Babylon.js, PlayCanvas, Cesium.

One node, one mesh, one POINTS primitive carrying the extension
``{"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}``, listed in ``extensionsUsed``
but not ``extensionsRequired`` (viewers without support fall back to a coloured point cloud).

Attributes (all float32, world frame = glTF frame, so nothing is rotated; the node has no
transform, never a negative scale):
    - ``POSITION`` with min/max.
    - ``KHR_gaussian_splatting:ROTATION`` unit quaternion in glTF order (x, y, z, w).
    - ``KHR_gaussian_splatting:SCALE`` linear standard deviation, metres (= exp(log_scales)).
    - ``KHR_gaussian_splatting:OPACITY`` linear opacity in [0, 1] (= sigmoid(logit)).
    - ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_i`` raw SH coefficients, one RGB triple each,
      every degree present up to the cloud's, m = -l..l.
    - ``COLOR_0`` fallback: linear RGB (sRGB-decoded DC colour) and opacity, u8 normalised.
"""

from __future__ import annotations

import numpy as np

from worldgen.types import GaussianCloud, srgb_to_linear

from ._glb import GlbBuilder
from ._splat_common import prepare
from .settings import ExportSettings

EXT = "KHR_gaussian_splatting"


def export_splat_glb(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """KHR_gaussian_splatting GLB bytes of ``cloud`` (see the module docstring)."""
    s = prepare(cloud, "world")
    b = GlbBuilder()
    attrs: dict[str, int] = {"POSITION": b.accessor(s.means, minmax=True)}
    q_xyzw = np.concatenate([s.quats[:, 1:], s.quats[:, :1]], axis=1).astype(np.float32)
    attrs[f"{EXT}:ROTATION"] = b.accessor(q_xyzw)
    attrs[f"{EXT}:SCALE"] = b.accessor(s.scales)
    attrs[f"{EXT}:OPACITY"] = b.accessor(s.opacities)
    k = 0
    for degree in range(s.sh_degree + 1):
        for i in range(2 * degree + 1):
            attrs[f"{EXT}:SH_DEGREE_{degree}_COEF_{i}"] = b.accessor(np.ascontiguousarray(s.sh[:, k, :]))
            k += 1
    rgba = np.concatenate([srgb_to_linear(s.colors), s.opacities[:, None]], axis=1)
    attrs["COLOR_0"] = b.accessor(np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8), normalized=True)
    prim = {
        "attributes": attrs,
        "mode": 0,
        "extensions": {EXT: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}},
    }
    mesh = b.add("meshes", {"name": "splats", "primitives": [prim]})
    node = b.add("nodes", {"name": "splats", "mesh": mesh})
    b.doc["scenes"] = [{"name": "splats", "nodes": [node]}]
    b.doc["scene"] = 0
    b.doc["extensionsUsed"] = [EXT]
    return b.to_bytes()


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "splat-glb",
        "splats",
        "splats.glb",
        export_splat_glb,
        "KHR_gaussian_splatting GLB: three.js, Babylon.js, PlayCanvas, Cesium",
    )
)
