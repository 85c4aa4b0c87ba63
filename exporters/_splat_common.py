"""Shared splat conversions: activation, frame changes and value guards used by every splat writer.

worldgen keeps a :class:`~worldgen.types.GaussianCloud` in the world frame (glTF's: +X right,
+Y up, the capture camera looks along -Z; metres) as optimisation parameters (log-scales,
opacity logits, (w, x, y, z) unit quaternions, real SH basis-major with the 3DGS sign
convention). Each file format wants something else; the conversions live here so every writer
applies them the same way.

Frames used by the formats:
    - ``world`` (glTF, KHR_gaussian_splatting, USD ParticleField, SPZ): no change. SPZ's on-disk
      frame is "RUB" (x right, y up, z back) which is exactly worldgen's world frame.
    - ``ply`` (INRIA PLY and antimatter15 ``.splat``): the COLMAP/OpenCV frame "RDF" (x right,
      y down, z forward), reached by a 180° rotation about X: (x, y, z) -> (x, -y, -z). The
      capture camera, which looks along -Z in the world, then looks along +Z as a COLMAP camera
      with the identity pose does, and converters that treat PLY as RDF (Niantic's spz library,
      splat-transform's SPZ path) turn our PLY into exactly our SPZ.
"""

from __future__ import annotations

import numpy as np

from worldgen.errors import InputError
from worldgen.types import GaussianCloud

_PLY_FLIP = np.array([1.0, -1.0, -1.0])
"""Diagonal of the world -> PLY (RDF) rotation, a 180° turn about X."""

LOGIT_LIMIT = 15.0
"""Logits are clamped to +-15 (opacity 3e-7 .. 1 - 3e-7) so every format stays finite."""

LOG_SCALE_RANGE = (-20.0, 10.0)
"""Log-scales are clamped to this range (2e-9 m .. 22 km) so exp() never over/underflows."""


def sh_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """Real SH basis with the 3DGS (INRIA) signs and ordering, evaluated at unit directions.

    Args:
        dirs: unit directions. [M, 3] float64
        degree: 0..3.

    Returns:
        basis values, coefficient order l = 0..degree, m = -l..l. [M, (degree + 1)^2] float64
    """
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    out = [np.full_like(x, 0.28209479177387814)]
    if degree >= 1:
        c1 = 0.4886025119029199
        out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (2 * zz - xx - yy),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
        ]
    if degree >= 3:
        out += [
            -0.5900435899266435 * y * (3 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (4 * zz - xx - yy),
            0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
            -0.4570457994644658 * x * (4 * zz - xx - yy),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3 * yy),
        ]
    return np.stack(out, axis=1)


def sh_flip_signs(diag: np.ndarray, degree: int) -> np.ndarray:
    """Per-coefficient signs that carry SH colour through a diagonal +-1 axis change.

    For an axis flip D (D = D^-1), the rotated colour field is f'(d) = f(D d); every real SH
    basis function is a polynomial whose monomials share one parity per axis, so
    Y_k(D d) = s_k Y_k(d) with s_k = +-1. The signs are read off numerically at generic
    directions, so they cannot drift from :func:`sh_basis`.

    Args:
        diag: the diagonal of D, entries +-1. [3]
        degree: 0..3.

    Returns:
        s_k. [(degree + 1)^2] float32
    """
    d = np.array([[0.267, 0.534, 0.802], [-0.61, 0.33, 0.72]], dtype=np.float64)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    ratio = sh_basis(d * np.asarray(diag, dtype=np.float64), degree) / sh_basis(d, degree)
    return np.sign(ratio[0]).astype(np.float32)


def quat_flip(quats_wxyz: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """Quaternions of R' = D R D for a proper axis flip D (two -1 entries, det D = +1).

    With D = diag(1, -1, -1) (a 180° turn about X) the rotation part becomes q_x(180°) * q, and
    the same holds for the other axes; in components this keeps w and the vector component of
    the kept axis and negates the other two. Combined with flipping the means by D, the
    covariance D R S^2 R^T D of every splat is carried over exactly.

    Args:
        quats_wxyz: unit quaternions, (w, x, y, z). [N, 4] float32
        diag: diagonal of D. [3]

    Returns:
        (w, x, y, z) quaternions of D R D. [N, 4] float32
    """
    q = np.asarray(quats_wxyz, dtype=np.float32).copy()
    q[:, 1:] *= np.asarray(diag, dtype=np.float32)[None, :]
    return q


def prepare(cloud: GaussianCloud, frame: str = "world") -> GaussianCloud:
    """Guard and convert a cloud for a writer.

    Args:
        cloud: the splats in the world frame.
        frame: "world" (no change) or "ply" (RDF: 180° about X, see the module docstring).

    Returns:
        the same splats in the requested frame, quaternions with w >= 0, log-scales clamped to
        :data:`LOG_SCALE_RANGE` and logits to +-:data:`LOGIT_LIMIT` (so every file value is finite).
    """
    if not isinstance(cloud, GaussianCloud):
        raise InputError(f"splat writers take a GaussianCloud, got {type(cloud).__name__}")
    means = cloud.means.astype(np.float32)
    quats = cloud.quats.astype(np.float64)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    # q and -q are the same rotation; a non-negative w makes byte encodings and tests stable.
    quats = np.where(quats[:, :1] < 0, -quats, quats).astype(np.float32)
    log_scales = np.clip(cloud.log_scales, *LOG_SCALE_RANGE).astype(np.float32)
    logits = np.clip(cloud.opacity_logits, -LOGIT_LIMIT, LOGIT_LIMIT).astype(np.float32)
    sh = cloud.sh  # read-only float32; copied only when the frame changes its signs
    if frame == "ply":
        means = (means * _PLY_FLIP.astype(np.float32)).astype(np.float32)
        quats = quat_flip(quats, _PLY_FLIP)
        sh = sh * sh_flip_signs(_PLY_FLIP, cloud.sh_degree)[None, :, None]
    elif frame != "world":
        raise InputError(f"unknown splat frame {frame!r}; use 'world' or 'ply'")
    return GaussianCloud(means, quats, log_scales, logits, np.asarray(sh, dtype=np.float32))
