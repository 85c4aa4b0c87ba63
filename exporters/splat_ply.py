"""INRIA 3DGS binary PLY: the splat file most engines and viewers load.

Layout (graphdeco-inria ``gaussian_model.py``): ``binary_little_endian``, one ``vertex``
element, 62 float32 properties in this order:
``x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity scale_0..2 rot_0..3``.

Encoding:
    - positions in the PLY frame "RDF" (x right, y down, z forward): worldgen's world frame
      turned 180° about X, (x, y, z) -> (x, -y, -z); quaternions and SH are rotated with it.
    - ``scale_*`` natural log of the standard deviation (metres), ``opacity`` the logit,
      ``rot_*`` the unit quaternion (w, x, y, z), ``f_dc_*`` the raw DC coefficient.
    - ``f_rest_*`` channel-major (15 red, 15 green, 15 blue) and always zero-padded to 45,
      because aras-p's Unity importer reads them with a fixed stride of 15 per channel.
    - ``nx ny nz`` are zeros (strict readers expect the full 248-byte record).
"""

from __future__ import annotations

import numpy as np

from worldgen.types import GaussianCloud

from ._splat_common import prepare
from .settings import ExportSettings

N_PROPS = 62
PROPERTY_NAMES: tuple[str, ...] = (
    ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
    + tuple(f"f_rest_{i}" for i in range(45))
    + ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
)


def ply_records(cloud: GaussianCloud) -> np.ndarray:
    """The 62 INRIA properties per splat, in file order and frame.

    Returns:
        one row per splat, columns as :data:`PROPERTY_NAMES`. [N, 62] float32
    """
    s = prepare(cloud, "ply")
    rec = np.zeros((s.n, N_PROPS), dtype=np.float32)
    rec[:, 0:3] = s.means
    rec[:, 6:9] = s.sh[:, 0, :]
    k = s.sh.shape[1] - 1
    if k:
        # basis-major [N, K, 3] -> channel-major blocks of 15 per colour channel.
        rest = np.transpose(s.sh[:, 1:, :], (0, 2, 1))  # [N, 3, k]
        for c in range(3):
            rec[:, 9 + 15 * c: 9 + 15 * c + k] = rest[:, c, :]
    rec[:, 54] = s.logits
    rec[:, 55:58] = s.log_scales
    rec[:, 58:62] = s.quats
    return rec


def export_ply(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """Binary little-endian INRIA PLY of ``cloud`` (see the module docstring for the encoding)."""
    rec = ply_records(cloud)
    header = ["ply", "format binary_little_endian 1.0", "comment worldgen 3DGS splats, frame RDF",
              f"element vertex {rec.shape[0]}"]
    header += [f"property float {name}" for name in PROPERTY_NAMES]
    header.append("end_header")
    return ("\n".join(header) + "\n").encode("ascii") + rec.astype("<f4").tobytes()


from .registry import Format, register_format  # noqa: E402

register_format(Format("ply", "splats", "splats.ply", export_ply,
                       "INRIA 3DGS PLY (62 floats, frame RDF): Unity aras-p, Unreal XScene/Luma, SuperSplat, Blender add-ons"))
