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


def _fill(rec: np.ndarray, cloud: GaussianCloud) -> None:
    s = prepare(cloud, "ply")
    n, k = len(s), s.sh.shape[1] - 1
    # basis-major [N, K, 3] -> channel-major [N, 3, 15] (zero-padded), written row-contiguously.
    rest = np.zeros((n, 3, 15), dtype=np.float32)
    rest[:, :, :k] = np.transpose(s.sh[:, 1:, :], (0, 2, 1))
    np.concatenate(
        [
            s.means,
            np.zeros((n, 3), np.float32),
            s.sh[:, 0, :],
            rest.reshape(n, 45),
            s.opacity_logits[:, None],
            s.log_scales,
            s.quats,
        ],
        axis=1,
        out=rec,
    )


def ply_records(cloud: GaussianCloud) -> np.ndarray:
    """The 62 INRIA properties per splat, in file order and frame.

    Returns:
        one row per splat, columns as :data:`PROPERTY_NAMES`. [N, 62] float32
    """
    rec = np.empty((len(cloud), N_PROPS), dtype="<f4")
    _fill(rec, cloud)
    return rec


def ply_header(n: int) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", "comment worldgen 3DGS splats, frame RDF", f"element vertex {n}"]
    lines += [f"property float {name}" for name in PROPERTY_NAMES]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def export_ply(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """Binary little-endian INRIA PLY of ``cloud`` (see the module docstring for the encoding)."""
    header = ply_header(len(cloud))
    # One buffer holds header and records, so the 250-byte-per-splat payload is copied once.
    buf = np.empty(len(header) + len(cloud) * N_PROPS * 4, dtype=np.uint8)
    buf[: len(header)] = np.frombuffer(header, dtype=np.uint8)
    _fill(buf[len(header) :].view("<f4").reshape(len(cloud), N_PROPS), cloud)
    return buf.tobytes()


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "ply",
        "splats",
        "splats.ply",
        export_ply,
        "INRIA 3DGS PLY (62 floats, frame RDF): Unity aras-p, Unreal XScene/Luma, SuperSplat, Blender add-ons",
    )
)
