"""antimatter15 ``.splat``: headerless 32-byte records, read by splat-transform, Spark and Babylon.js.

Record (little-endian): position 3 x f32, linear scale (standard deviation, metres) 3 x f32,
RGBA 4 x u8 (RGB = 0.5 + SH_C0 * DC clipped, A = sigmoid(logit)), rotation 4 x u8
(q * 128 + 128, order w, x, y, z). No view-dependent colour. Same frame as the PLY ("RDF",
worldgen's world turned 180° about X), since readers treat both alike.
"""

from __future__ import annotations

import numpy as np

from worldgen.types import GaussianCloud

from ._splat_common import prepare
from .settings import ExportSettings

RECORD = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def export_splat(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """``.splat`` bytes of ``cloud``: [N] records of 32 bytes, in the cloud's order."""
    s = prepare(cloud, "ply")
    rec = np.zeros(len(s), dtype=RECORD)
    rec["pos"] = s.means
    rec["scale"] = s.scales
    rgba = np.concatenate([s.colors, s.opacities[:, None]], axis=1).astype(np.float64)
    rec["rgba"] = np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8)
    # Alpha 0 / 255 become -inf / +inf logits in readers that convert to PLY: keep it in [1, 254].
    rec["rgba"][:, 3] = np.clip(rec["rgba"][:, 3], 1, 254)
    rec["rot"] = np.clip(np.rint(s.quats.astype(np.float64) * 128.0 + 128.0), 0, 255).astype(np.uint8)
    return rec.tobytes()


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "splat", "splats", "splats.splat", export_splat, "antimatter15 .splat (no SH): web viewers, Spark, Babylon.js"
    )
)
