"""Differentiable rasterization of 3D Gaussians: gsplat on CUDA, a vectorised PyTorch path elsewhere.

Both paths take and return what ``gsplat.rasterization`` does (activated scales and opacities,
wxyz quaternions, world->camera view matrices in the OpenCV camera frame, pinhole intrinsics)
so the optimiser in :mod:`worldgen.splats.refine` does not care which one runs.

The CPU path (:func:`rasterize_cpu`) follows gsplat's forward semantics: EWA projection with
gsplat's Jacobian clamping and ``eps2d`` blur, gsplat's opacity-aware bounding radius, alpha =
min(0.999, o * exp(-sigma)) with contributions under 1/255 skipped and a pixel finished once its
transmittance would fall to 1e-4 or below. Instead of per-tile loops it works on flat arrays:

1. cull with a conservative screen bound (largest scale), then project the candidates to every
   camera at once and keep the visible (camera, splat) pairs packed ([nnz, ...], like gsplat's
   ``packed=True``);
2. bin: (splat, 4x4 tile) pairs are sorted by tile and depth; every pixel of a tile tests its
   tile's list as one broadcast grid, and the (pixel, splat) intersections with alpha >= 1/255
   are put in per-pixel, front-to-back order by a counting sort (no sort of the long list);
3. composite: transmittance is a segmented exclusive cumulative sum of log(1 - alpha) (float64,
   so long lists keep precision), truncated where gsplat stops; weights are scattered back to
   pixels with ``index_add``. This step is a ``torch.autograd.Function`` with a hand-written
   backward that keeps only alpha and T per intersection.

Steps 1 and 3 carry gradients; step 2 is index bookkeeping done without gradients, as gsplat's
tile intersection is. See docs/splats.md for the design and measurements.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
from typing import Any, Literal

import numpy as np

from ..errors import BackendUnavailableError, InputError
from .workers import keep_state, new_token, register_op, take_state

log = logging.getLogger(__name__)

ALPHA_THRESHOLD = 1.0 / 255.0
"""Contributions with a smaller alpha are skipped (gsplat's ALPHA_THRESHOLD)."""

T_STOP = 1e-4
"""A pixel stops accumulating once its transmittance would fall to this value or below (gsplat)."""

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]

_GLTF_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


# --------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------


def gltf_to_opencv_world_to_cam(cam_to_world: np.ndarray) -> np.ndarray:
    """World->camera matrix in the OpenCV camera frame from a worldgen (glTF-frame) camera pose.

    Args:
        cam_to_world: worldgen camera pose (camera +X right, +Y up, looks along -Z). [4, 4] or [C, 4, 4]

    Returns:
        gsplat's ``viewmats``: world -> camera with camera +X right, +Y down, looking along +Z.
        [4, 4] or [C, 4, 4] float64

    Convention:
        The two camera frames differ by a half turn about the camera's X axis, so the conversion
        is ``diag(1, -1, -1, 1) @ inverse(cam_to_world)``. This is the only place worldgen
        crosses between the two frames.
    """
    m = np.asarray(cam_to_world, dtype=np.float64)
    if m.shape[-2:] != (4, 4):
        raise InputError(f"cam_to_world has shape {list(m.shape)}, expected [4, 4] or [C, 4, 4]")
    return _GLTF_TO_OPENCV @ np.linalg.inv(m)


def cameras_to_gsplat(cameras: list) -> tuple[np.ndarray, np.ndarray, int, int]:
    """gsplat's camera arrays for worldgen perspective cameras of one size.

    Args:
        cameras: :class:`worldgen.types.Camera` objects, all perspective and of equal size.

    Returns:
        A tuple: **viewmats** [C, 4, 4] float32 (world -> OpenCV camera), **Ks** [C, 3, 3] float32,
        **width**, **height**.
    """
    if not cameras:
        raise InputError("no cameras given; pass at least one perspective camera")
    w, h = cameras[0].width, cameras[0].height
    for c in cameras:
        if c.model != "perspective":
            raise InputError(f"gaussians render through perspective cameras only, got a {c.model!r} camera")
        if (c.width, c.height) != (w, h):
            raise InputError("cameras rendered together must share one image size; render them in groups")
    viewmats = gltf_to_opencv_world_to_cam(np.stack([c.cam_to_world for c in cameras]))
    Ks = np.stack([c.K for c in cameras])
    return viewmats.astype(np.float32), Ks.astype(np.float32), w, h


# --------------------------------------------------------------------------------------------
# Choosing the implementation
# --------------------------------------------------------------------------------------------


def _gsplat_build_dir() -> str | None:
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return _get_build_directory("gsplat_cuda", verbose=False)
    except Exception:  # a private torch helper: any failure only means "unknown"
        return None


def select_rasterizer() -> tuple[str, str]:
    """Which rasterizer a run here will use, and why (for ``worldgen info`` and run reports).

    Returns:
        (name, reason): name is "gsplat" (CUDA kernels) or "cpu" (worldgen's PyTorch rasterizer).

    The environment variable ``WORLDGEN_RASTERIZER`` = "cpu" forces the CPU path. Deciding never
    compiles anything: when gsplat's kernels are not built yet the reason says that the first
    render will compile them.
    """
    forced = os.environ.get("WORLDGEN_RASTERIZER", "").strip().lower()
    if forced == "cpu":
        return "cpu", "forced by WORLDGEN_RASTERIZER=cpu"
    if forced not in ("", "auto", "gsplat"):
        raise InputError(f"WORLDGEN_RASTERIZER={forced!r} is not a rasterizer; use 'cpu', 'gsplat' or 'auto'")
    import torch

    if not torch.cuda.is_available():
        return "cpu", f"no CUDA device visible to torch {torch.__version__}; using the PyTorch CPU rasterizer"
    if importlib.util.find_spec("gsplat") is None:
        return "cpu", "gsplat is not installed (pip install gsplat); using the PyTorch rasterizer"
    if importlib.util.find_spec("gsplat.csrc") is not None:
        return "gsplat", f"CUDA device {torch.cuda.get_device_name(0)} with gsplat's prebuilt kernels"
    # Do not import gsplat.cuda._backend here: importing it starts the JIT build when a toolkit
    # exists and nothing is built yet.
    if not _cuda_toolkit_found():
        return "cpu", (
            "gsplat has no prebuilt kernels and no CUDA toolkit (nvcc) to build them; "
            "set CUDA_HOME or install a gsplat wheel with kernels"
        )
    build = _gsplat_build_dir()
    if build and os.path.exists(os.path.join(build, "gsplat_cuda.so")):
        return "gsplat", f"CUDA device {torch.cuda.get_device_name(0)}; gsplat kernels built in {build}"
    return "gsplat", (
        f"CUDA device {torch.cuda.get_device_name(0)}; gsplat's kernels compile on first use "
        "(can take 20+ minutes: set TORCH_CUDA_ARCH_LIST to the card's architecture and MAX_JOBS=4)"
    )


def _cuda_toolkit_found() -> bool:
    import shutil

    try:
        from torch.utils.cpp_extension import CUDA_HOME
    except Exception:
        CUDA_HOME = None
    home = CUDA_HOME or os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
        return True
    return shutil.which("nvcc") is not None


def _gsplat_ready() -> str | None:
    """None when gsplat's CUDA kernels load (compiling them if needed), else why not."""
    try:
        from gsplat.cuda._backend import _C
    except Exception as exc:
        return f"gsplat's CUDA kernels failed to load ({type(exc).__name__}: {exc})"
    if _C is None:
        return "gsplat found no CUDA toolkit to build its kernels"
    return None


# --------------------------------------------------------------------------------------------
# Projection (differentiable)
# --------------------------------------------------------------------------------------------


def quat_to_rotmat(quats):
    """Rotation matrices of (w, x, y, z) quaternions, normalised first.

    Args:
        quats: any length > 0. [N, 4] tensor

    Returns:
        Local -> world rotation. [N, 3, 3] tensor
    """
    import torch

    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def project_gaussians(
    means,
    quats,
    scales,
    opacities,
    viewmats,
    Ks,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    antialiased: bool = False,
) -> dict[str, Any]:
    """EWA projection of 3D Gaussians to every camera (gsplat's fused projection, unpacked).

    Args:
        means: centres, world frame, metres. [N, 3]
        quats: rotations (w, x, y, z), need not be unit. [N, 4]
        scales: activated standard deviations, metres. [N, 3]
        opacities: activated opacities in [0, 1], or None for the fixed 3.33-sigma radius. [N]
        viewmats: world -> OpenCV camera. [C, 4, 4]
        Ks: pinhole intrinsics. [C, 3, 3]

    Returns:
        dict of tensors: **means2d** [C, N, 2] pixels, **conics** (inverse 2D covariance, upper
        triangle a, b, c) [C, N, 3], **depths** (camera z) [C, N], **radii** (bounding half-sizes
        in pixels, 0 = culled) [C, N, 2] int32, **compensations** [C, N] (antialiased only, else None),
        **means_c** [C, N, 3] camera-frame centres.
    """
    import torch

    R = viewmats[:, :3, :3]
    t = viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
    x, y, z = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    # gsplat clamps the Jacobian's view direction to 1.3x the field of view so splats far outside
    # the image do not get absurd screen-space covariances.
    zs = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    xz = torch.minimum(torch.maximum(x / zs, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    yz = torch.minimum(torch.maximum(y / zs, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    # J = [[fx/z, 0, -fx*xz/z], [0, fy/z, -fy*yz/z]]; T = J @ R_view; U = T @ (R_q * s).
    j00, j02 = fx / zs, -fx * xz / zs
    j11, j12 = fy / zs, -fy * yz / zs
    T0 = j00[..., None] * R[:, None, 0, :] + j02[..., None] * R[:, None, 2, :]  # [C, N, 3]
    T1 = j11[..., None] * R[:, None, 1, :] + j12[..., None] * R[:, None, 2, :]
    M = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3], columns = scaled axes
    U0 = torch.einsum("cnk,nkj->cnj", T0, M)
    U1 = torch.einsum("cnk,nkj->cnj", T1, M)
    a0 = (U0 * U0).sum(-1)
    b0 = (U0 * U1).sum(-1)
    c0 = (U1 * U1).sum(-1)
    a, c = a0 + eps2d, c0 + eps2d
    # det = a c - b^2 written without cancellation: a0 c0 - b0^2 = |U0 x U1|^2 (Lagrange's
    # identity). The direct form loses every digit in float32 for splats close to a camera
    # (a0 c0 ~ 1e15) and could go to ~0 or negative, making the conic and its gradient explode.
    cr = torch.linalg.cross(U0, U1, dim=-1)
    det0 = (cr * cr).sum(-1)
    det = det0 + eps2d * (a0 + c0) + eps2d * eps2d
    comp = torch.sqrt(torch.clamp(det0 / det.clamp_min(1e-10), min=0.0)) if antialiased else None
    det_c = det.clamp_min(1e-10)
    conics = torch.stack([c / det_c, -b0 / det_c, a / det_c], dim=-1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)

    with torch.no_grad():
        extend = torch.full_like(z, 3.33)
        valid = (det > 0) & (z > near_plane) & (z < far_plane)
        if opacities is not None:
            op = opacities[None, :].expand_as(z)
            if comp is not None:
                op = op * comp
            valid &= op >= ALPHA_THRESHOLD
            extend = torch.minimum(extend, torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
        rx = torch.ceil(extend * torch.sqrt(a.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.clamp_min(0)))
        valid &= ~((rx <= radius_clip) & (ry <= radius_clip))
        mx, my = means2d[..., 0], means2d[..., 1]
        valid &= (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        valid &= torch.isfinite(mx) & torch.isfinite(my)
        radii = torch.stack([rx, ry], dim=-1) * valid[..., None]
        radii = radii.to(torch.int32)
    return {
        "means2d": means2d,
        "conics": conics,
        "depths": z,
        "radii": radii,
        "compensations": comp,
        "means_c": means_c,
    }


# --------------------------------------------------------------------------------------------
# Spherical harmonics
# --------------------------------------------------------------------------------------------

_SH_C0 = 0.28209479177387814
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def eval_sh(degree: int, dirs, coeffs):
    """Colour from real spherical harmonics (the 3DGS basis and sign convention).

    Args:
        degree: bands to use, 0..3.
        dirs: viewing directions (camera -> splat), any length. [..., 3]
        coeffs: basis-major coefficients. [..., K, 3], K >= (degree + 1)^2

    Returns:
        Raw SH sum, before gsplat's +0.5 offset. [..., 3]
    """
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = d[..., 0:1], d[..., 1:2], d[..., 2:3]
    out = _SH_C0 * coeffs[..., 0, :]
    if degree >= 1:
        out = out - _SH_C1 * y * coeffs[..., 1, :] + _SH_C1 * z * coeffs[..., 2, :] - _SH_C1 * x * coeffs[..., 3, :]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out = (
            out
            + _SH_C2[0] * xy * coeffs[..., 4, :]
            + _SH_C2[1] * yz * coeffs[..., 5, :]
            + _SH_C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :]
            + _SH_C2[3] * xz * coeffs[..., 7, :]
            + _SH_C2[4] * (xx - yy) * coeffs[..., 8, :]
        )
    if degree >= 3:
        out = (
            out
            + _SH_C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :]
            + _SH_C3[1] * xy * z * coeffs[..., 10, :]
            + _SH_C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :]
            + _SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
            + _SH_C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :]
            + _SH_C3[5] * z * (xx - yy) * coeffs[..., 14, :]
            + _SH_C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :]
        )
    if degree > 3:
        raise InputError(f"SH degree {degree} is not supported; use 0..3")
    return out


# --------------------------------------------------------------------------------------------
# CPU rasterizer
# --------------------------------------------------------------------------------------------


def rasterize_cpu(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    backgrounds=None,
    render_mode: RenderMode = "RGB",
    rasterize_mode: Literal["classic", "antialiased"] = "classic",
    max_intersections: int = 60_000_000,
    grad_mask=None,
    tile_parts: int = 1,
    worker=None,
):
    """Render Gaussians to C pinhole cameras with gsplat's ``rasterization`` semantics, on any device.

    Args:
        means: centres, world frame, metres. [N, 3]
        quats: rotations, (w, x, y, z). [N, 4]
        scales: activated standard deviations, metres. [N, 3]
        opacities: activated, in [0, 1]. [N]
        colors: post-activation features [N, D] or [C, N, D]; or SH coefficients [N, K, 3] when
            ``sh_degree`` is set (then colour = max(SH + 0.5, 0), as gsplat does).
        viewmats: world -> camera, OpenCV camera frame (see :func:`gltf_to_opencv_world_to_cam`). [C, 4, 4]
        Ks: pinhole intrinsics, pixel centres at +0.5. [C, 3, 3]
        width, height: image size, pixels.
        backgrounds: colour behind the splats. [C, D]
        render_mode: "RGB", "D" (accumulated z-depth), "ED" (expected z-depth), "RGB+D", "RGB+ED".
        rasterize_mode: "classic" or "antialiased" (opacity scaled by the blur compensation).
        max_intersections: refuse to build more (splat, pixel) intersections than this (memory guard).
        grad_mask: splats whose gradients the caller uses ([N] bool), or None for all. The
            backward skips the other splats' intersections (their gradients come out 0), which
            halves its work when a frozen layer, e.g. the backing, holds half the intersections;
            the gradients of the masked-in splats are bit-identical to an unmasked run's.
        tile_parts: 1, or n >= 2 to bin and composite in two pieces (:class:`_SplitComposite`):
            piece 0 = every n-th tile row from the first, piece 1 = the other rows. The same
            image, and gradients summed piece by piece (they differ from 1 part's in the last
            bits). Piece 1 is what ``worker`` takes (n = 2: halves).
        worker: a :class:`worldgen.splats.workers.CpuWorker` that renders piece 1 while this
            process renders piece 0; the bytes are those of the same ``tile_parts`` without it.

    Returns:
        A tuple: **render_colors** [C, H, W, X] (X = D, 1 or D + 1 by ``render_mode``),
        **render_alphas** [C, H, W, 1] and **meta**, a dict with gsplat's packed keys
        ("camera_ids", "gaussian_ids", "radii" [nnz, 2], "means2d" [nnz, 2] in the autograd graph,
        "depths", "conics", "opacities", "width", "height", "n_cameras", "n_intersections"), enough
        for gsplat's DefaultStrategy with ``packed=True``.
    """
    import torch

    if render_mode not in ("RGB", "D", "ED", "RGB+D", "RGB+ED"):
        raise InputError(f"unknown render_mode {render_mode!r}; use RGB, D, ED, RGB+D or RGB+ED")
    if rasterize_mode not in ("classic", "antialiased"):
        raise InputError(f"unknown rasterize_mode {rasterize_mode!r}; use 'classic' or 'antialiased'")
    N = means.shape[0]
    C = viewmats.shape[0]
    if means.shape != (N, 3) or quats.shape != (N, 4) or scales.shape != (N, 3) or opacities.shape != (N,):
        raise InputError(
            f"gaussian tensors disagree: means {list(means.shape)}, quats {list(quats.shape)}, "
            f"scales {list(scales.shape)}, opacities {list(opacities.shape)}; expected [N,3], [N,4], [N,3], [N]"
        )
    if viewmats.shape != (C, 4, 4) or Ks.shape != (C, 3, 3):
        raise InputError(f"viewmats {list(viewmats.shape)} / Ks {list(Ks.shape)} must be [C, 4, 4] / [C, 3, 3]")
    dev, dt = means.device, means.dtype
    pk = _project_packed(
        means,
        quats,
        scales,
        opacities,
        viewmats,
        Ks,
        width,
        height,
        eps2d,
        near_plane,
        far_plane,
        radius_clip,
        rasterize_mode == "antialiased",
    )
    cam_ids, gs_ids, means2d, conics, depths, radii, ops = (
        pk[k] for k in ("camera_ids", "gaussian_ids", "means2d", "conics", "depths", "radii", "opacities")
    )

    # Per-visible-splat features.
    if sh_degree is not None:
        if colors.dim() != 3 or colors.shape[0] != N or colors.shape[-1] != 3:
            raise InputError(f"SH colours must be [N, K, 3], got {list(colors.shape)}")
        if (sh_degree + 1) ** 2 > colors.shape[1]:
            raise InputError(f"sh_degree {sh_degree} needs {(sh_degree + 1) ** 2} coefficients, got {colors.shape[1]}")
        if sh_degree == 0:  # no direction needed
            feats = torch.clamp_min(_SH_C0 * colors[:, 0].index_select(0, gs_ids) + 0.5, 0.0)
        else:
            campos = torch.linalg.inv(viewmats)[:, :3, 3]
            dirs = means.index_select(0, gs_ids) - campos[cam_ids]
            feats = torch.clamp_min(eval_sh(sh_degree, dirs, colors.index_select(0, gs_ids)) + 0.5, 0.0)
    elif colors.dim() == 2 and colors.shape[0] == N:
        feats = colors.index_select(0, gs_ids)
    elif colors.dim() == 3 and colors.shape[:2] == (C, N):
        feats = colors[cam_ids, gs_ids]
    else:
        raise InputError(f"colors must be [N, D], [C, N, D] or SH [N, K, 3] with sh_degree; got {list(colors.shape)}")
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = torch.cat([feats, depths[:, None]], dim=-1)
    elif render_mode in ("D", "ED"):
        feats = depths[:, None]
    D = feats.shape[-1]

    P = C * height * width
    if tile_parts < 1:
        raise InputError(f"tile_parts must be >= 1, got {tile_parts}")
    if tile_parts > 1:
        need = None  # per packed splat, whether its gradient is wanted; None: no backward
        if torch.is_grad_enabled() and any(t.requires_grad for t in (means2d, conics, ops, feats)):
            need = torch.ones_like(gs_ids, dtype=torch.bool) if grad_mask is None else grad_mask.index_select(0, gs_ids)
        counts: list[int] = []
        img, acc = _SplitComposite.apply(
            tile_parts,
            means2d,
            conics,
            ops,
            feats,
            depths.detach(),
            radii,
            cam_ids,
            need,
            P,
            width,
            height,
            max_intersections,
            worker,
            counts,
        )
        n_intersections = counts[0]
    else:
        pix, entry, alpha, trans, end, clamped = _bin_intersections(
            means2d.detach(),
            conics.detach(),
            ops.detach(),
            depths.detach(),
            radii,
            cam_ids,
            width,
            height,
            max_intersections,
        )
        # Intersections whose splat wants a gradient, ascending (None: all of them).
        sel = None
        if grad_mask is not None and torch.is_grad_enabled():
            need = grad_mask.index_select(0, gs_ids).index_select(0, entry)
            sel = None if bool(need.all()) else torch.nonzero(need).reshape(-1)
        img, acc = _Composite.apply(
            means2d, conics, ops, feats, pix, entry, alpha, trans, end, clamped, sel, P, width, height
        )
        n_intersections = int(pix.shape[0])
    render = img.reshape(C, height, width, D)
    alphas = acc.reshape(C, height, width, 1)
    if backgrounds is not None:
        bg = backgrounds
        if render_mode in ("RGB+D", "RGB+ED"):
            bg = torch.cat([bg, torch.zeros(C, 1, device=dev, dtype=dt)], dim=-1)
        elif render_mode in ("D", "ED"):
            bg = torch.zeros(C, 1, device=dev, dtype=dt)
        render = render + bg[:, None, None, :] * (1.0 - alphas)
    if render_mode in ("ED", "RGB+ED"):
        render = torch.cat([render[..., :-1], render[..., -1:] / alphas.clamp(min=1e-10)], dim=-1)

    meta = {
        "camera_ids": cam_ids,
        "gaussian_ids": gs_ids,
        "radii": radii,
        "means2d": means2d,
        "depths": depths,
        "conics": conics,
        "opacities": ops,
        "width": width,
        "height": height,
        "n_cameras": C,
        "n_batches": 1,
        "packed": True,
        "n_intersections": n_intersections,
    }
    return render, alphas, meta


def _project_packed(
    means,
    quats,
    scales,
    opacities,
    viewmats,
    Ks,
    width: int,
    height: int,
    eps2d: float,
    near_plane: float,
    far_plane: float,
    radius_clip: float,
    antialiased: bool,
) -> dict[str, Any]:
    """Cull, project and pack the visible (camera, splat) pairs (gsplat's ``packed=True`` layout).

    Returns a dict of [nnz, ...] tensors: camera_ids, gaussian_ids, means2d (in the autograd graph),
    conics, depths, radii and opacities (times the antialiasing compensation when it applies).
    """
    # Cull before projecting: a conservative screen-space bound from each splat's largest scale
    # leaves typically 10-20 % of a world's splats for the exact (differentiable) projection.
    sub = _frustum_candidates(
        means.detach(), scales.detach(), opacities.detach(), viewmats, Ks, width, height, eps2d, near_plane, far_plane
    )
    proj = project_gaussians(
        means.index_select(0, sub),
        quats.index_select(0, sub),
        scales.index_select(0, sub),
        opacities.index_select(0, sub),
        viewmats,
        Ks,
        width,
        height,
        eps2d,
        near_plane,
        far_plane,
        radius_clip,
        antialiased,
    )
    import torch

    vis = (proj["radii"] > 0).all(dim=-1)  # [C, n_sub]
    cam_ids, loc_ids = torch.nonzero(vis, as_tuple=True)
    gs_ids = sub.index_select(0, loc_ids)
    ops = opacities.index_select(0, gs_ids)
    if proj["compensations"] is not None:
        ops = ops * proj["compensations"][cam_ids, loc_ids]
    return {
        "camera_ids": cam_ids,
        "gaussian_ids": gs_ids,
        "means2d": proj["means2d"][cam_ids, loc_ids],
        "conics": proj["conics"][cam_ids, loc_ids],
        "depths": proj["depths"][cam_ids, loc_ids],
        "radii": proj["radii"][cam_ids, loc_ids],
        "opacities": ops,
    }


def composite_weights(
    means,
    quats,
    scales,
    opacities,
    viewmats,
    Ks,
    width: int,
    height: int,
    *,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    rasterize_mode: Literal["classic", "antialiased"] = "classic",
    max_intersections: int = 60_000_000,
    tile_parts: int = 1,
    worker=None,
):
    """Every (pixel, splat) compositing weight of a render (no gradients).

    With the geometry fixed, a render is linear in the splats' colours: pixel p shows
    ``sum_k w_pk f_k`` (plus ``(1 - alpha_p) x background``) with ``w = alpha x T`` from the same
    rules as :func:`rasterize_cpu`. :func:`worldgen.splats.colours.solve_colours` uses this to
    solve for colours directly.

    Args: as :func:`rasterize_cpu` (activated scales and opacities, OpenCV ``viewmats``, ``Ks``,
    ``tile_parts`` and ``worker``; with 2 pieces the list holds piece 0's pixels, then piece 1's).

    Returns:
        A tuple: **pixel_ids** c*H*W + y*W + x [M] int64, **gaussian_ids** [M] int64 and
        **weights** alpha x T [M], each pixel's intersections contiguous and front to back.
    """
    import torch

    with torch.no_grad():
        pk = _project_packed(
            means,
            quats,
            scales,
            opacities,
            viewmats,
            Ks,
            width,
            height,
            eps2d,
            near_plane,
            far_plane,
            0.0,
            rasterize_mode == "antialiased",
        )
        args = tuple(pk[k] for k in ("means2d", "conics", "opacities", "depths", "radii", "camera_ids"))
        args += (width, height, max_intersections)
        if tile_parts == 1:
            pix, entry, wt = _weights_part(*args, (0, 1))
        else:
            # Part 1 (the odd tile rows) in the helper while this process bins part 0; the parts'
            # lists one after the other keep each pixel's intersections contiguous.
            if worker is not None:
                worker.submit("weights_part", *args, (1, tile_parts))
            parts = [_weights_part(*args, (0, tile_parts))]
            parts.append(worker.result() if worker is not None else _weights_part(*args, (1, tile_parts)))
            pix, entry, wt = (torch.cat(x) for x in zip(*parts))
        return pix.long(), pk["gaussian_ids"].index_select(0, entry.long()), wt


@register_op("weights_part")
def _weights_part(means2d, conics, ops, depths, radii, cam_ids, width, height, max_intersections, part):
    """(pixel ids, packed splat index, weight alpha x T) of the tile rows of ``part``; the ids
    int32 when every pixel id fits (half the bytes to pass between processes)."""
    import torch

    pix, entry, alpha, trans, _e, _c = _bin_intersections(
        means2d, conics, ops, depths, radii, cam_ids, width, height, max_intersections, part=part
    )
    if part[1] > 1 and pix.numel() and int(pix.max()) < 2**31:
        pix, entry = pix.to(torch.int32), entry.to(torch.int32)
    return pix, entry, alpha * trans


def _frustum_candidates(
    means, scales, opacities, viewmats, Ks, width: int, height: int, eps2d: float, near_plane: float, far_plane: float
):
    """Indices of splats that may be visible in at least one camera (a superset of the exact test).

    The projected standard deviation along any image axis is at most f / z x sqrt(1 + xz^2 + yz^2)
    x the largest scale (the Jacobian row norm, with gsplat's clamped x/z, y/z), so a bounding
    radius from it contains gsplat's. [n_sub] int64, ascending.
    """
    import torch

    with torch.no_grad():
        vm = viewmats.to(means.dtype)
        R, t = vm[:, :3, :3], vm[:, :3, 3]
        mc = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
        x, y, z = mc.unbind(-1)
        fx, fy = Ks[:, 0, 0, None].to(means.dtype), Ks[:, 1, 1, None].to(means.dtype)
        cx, cy = Ks[:, 0, 2, None].to(means.dtype), Ks[:, 1, 2, None].to(means.dtype)
        ok = (z > near_plane) & (z < far_plane) & (opacities[None, :] >= ALPHA_THRESHOLD)
        zs = z.clamp_min(near_plane)
        limx = torch.maximum(cx / fx, (width - cx) / fx) + 0.3 * 0.5 * width / fx
        limy = torch.maximum(cy / fy, (height - cy) / fy) + 0.3 * 0.5 * height / fy
        gain = torch.sqrt(1.0 + limx * limx + limy * limy)  # [C, 1]
        smax = scales.max(dim=-1).values[None, :]
        sd = torch.maximum(fx, fy) / zs * gain * smax
        r = 3.33 * torch.sqrt(sd * sd + eps2d) + 2.0
        mx, my = fx * x / zs + cx, fy * y / zs + cy
        ok &= (mx + r > 0) & (mx - r < width) & (my + r > 0) & (my - r < height)
        return torch.nonzero(ok.any(dim=0)).reshape(-1)


class _Composite:
    """Alpha compositing of sorted (pixel, splat) intersections with a hand-written backward.

    Forward: weights alpha x T (T from :func:`_bin_intersections`) scattered to pixels.
    Backward: the exact gradient, recomputing pixel offsets from the saved index arrays and the
    per-intersection alpha and T, instead of keeping autograd's dozen intersection-sized
    intermediates. The class is built on first use (torch is imported lazily).
    """

    _fn = None

    @classmethod
    def apply(cls, *args):
        if cls._fn is None:
            cls._fn = _make_composite_function()
        return cls._fn.apply(*args)


class _SplitComposite:
    """Binning and compositing in two pieces of interleaved tile rows (``part`` (0, n): every
    n-th row; (1, n): the others), the second one in a helper process
    (:class:`worldgen.splats.workers.CpuWorker`) when one is given, else here after the first.

    Each pixel's intersections lie in one part, so the image is the sum of the parts' images
    (disjoint pixels: exact) and every per-splat gradient is part 0's sum plus part 1's, in that
    order, with or without a helper: the bytes do not depend on it.
    """

    _fn = None

    @classmethod
    def apply(cls, *args):
        if cls._fn is None:
            cls._fn = _make_split_composite_function()
        return cls._fn.apply(*args)


def _composite_forward(feats, pix, entry, alpha, T, P: int):
    """Image [P, D], alpha [P] and the gathered features [M, D] of sorted intersections."""
    import torch

    w = alpha * T
    img = torch.zeros(P, feats.shape[-1], device=feats.device, dtype=feats.dtype)
    fk = feats.index_select(0, entry)  # kept for the backward: one gather of [M, D] fewer
    img.index_add_(0, pix, w[:, None] * fk)
    acc = torch.zeros(P, device=feats.device, dtype=feats.dtype).index_add_(0, pix, w)
    return img, acc, fk


def _composite_backward(means2d, conics, ops, nnz: int, state, g_img, g_acc, width: int, height: int):
    """Per-splat gradients [nnz, 6 + D] (2D mean, conic, opacity, features) of one composite.

    ``state`` = (pix, entry, alpha, T, end, clamped, acc, fk, sel) from the forward; ``sel``: the
    intersections whose splat wants a gradient (ascending), or None for all.
    """
    import torch

    pix, entry, alpha, T, end, clamped, acc, fk, sel = state
    dt = fk.dtype
    D = fk.shape[-1]
    if g_img is None:
        g_img = torch.zeros(acc.shape[0], D, dtype=dt, device=fk.device)
    if g_acc is None:
        g_acc = torch.zeros_like(acc)
    gp = g_img.index_select(0, pix)  # [M, D]
    w = alpha * T
    v = (gp * fk).sum(-1)  # dL/dC . f_k
    # S_k = sum over later intersections of the same pixel of w_j v_j (one float64 cumsum).
    cs = torch.cumsum((w * v).to(torch.float64), 0)
    cs_k = cs
    if sel is not None:
        # From here on only the intersections of splats that want a gradient (grad_mask); the
        # suffix sums above needed them all. Every value below is computed elementwise as before
        # and summed per splat in the same order, so it is bit-identical.
        pix, entry, alpha, T, end, clamped, gp, w, v, cs_k = (
            t.index_select(0, sel) for t in (pix, entry, alpha, T, end, clamped, gp, w, v, cs)
        )
    S = (cs.index_select(0, end) - cs_k).to(dt)
    t_final = (1.0 - acc).index_select(0, pix)  # transmittance after the list
    # dC/dalpha_k = T_k f_k - S_k / (1 - alpha_k); dA/dalpha_k = T_final / (1 - alpha_k).
    g_alpha = T * v - (S - g_acc.index_select(0, pix) * t_final) / (1.0 - alpha)
    # alpha = min(0.999, o exp(-sigma)): no gradient where the clamp is active (as gsplat).
    g_alpha = g_alpha.masked_fill(clamped, 0.0)
    o = ops.index_select(0, entry)
    g_o = g_alpha * alpha / o  # d alpha / d o = exp(-sigma)
    g_sig = -g_alpha * alpha  # d alpha / d sigma = -alpha
    m2 = means2d.index_select(0, entry)
    cn = conics.index_select(0, entry)
    dx = (pix % width).to(dt) + 0.5 - m2[:, 0]
    dy = torch.div(pix, width, rounding_mode="floor").remainder_(height).to(dt) + 0.5 - m2[:, 1]
    a, b, c = cn.unbind(-1)
    gd = torch.empty(pix.shape[0], 6 + D, dtype=dt, device=fk.device)
    torch.mul(g_sig, (a * dx + b * dy).neg_(), out=gd[:, 0])  # d sigma / d mean_x = -(a dx + b dy)
    torch.mul(g_sig, (b * dx + c * dy).neg_(), out=gd[:, 1])
    torch.mul(g_sig * 0.5, dx * dx, out=gd[:, 2])
    torch.mul(g_sig, dx * dy, out=gd[:, 3])
    torch.mul(g_sig * 0.5, dy * dy, out=gd[:, 4])
    gd[:, 5] = g_o
    torch.mul(w[:, None], gp, out=gd[:, 6:])
    return torch.zeros(nnz, 6 + D, dtype=dt, device=fk.device).index_add_(0, entry, gd)


def _make_composite_function():
    import torch

    class Composite(torch.autograd.Function):
        @staticmethod
        def forward(ctx, means2d, conics, ops, feats, pix, entry, alpha, T, end, clamped, sel, P, width, height):
            img, acc, fk = _composite_forward(feats, pix, entry, alpha, T, P)
            ctx.save_for_backward(means2d, conics, ops, pix, entry, alpha, T, end, clamped, acc, fk)
            ctx.sel, ctx.nnz = sel, feats.shape[0]
            ctx.width, ctx.height = width, height
            return img, acc

        @staticmethod
        def backward(ctx, g_img, g_acc):
            means2d, conics, ops, *state = ctx.saved_tensors
            per = _composite_backward(
                means2d, conics, ops, ctx.nnz, (*state, ctx.sel), g_img, g_acc, ctx.width, ctx.height
            )
            # One gradient per forward input; the index arrays, sizes and masks get None.
            return (per[:, 0:2], per[:, 2:5], per[:, 5], per[:, 6:]) + (None,) * 10

    return Composite


@register_op("composite_part")
def _composite_part(means2d, conics, ops, depths, radii, cam_ids, feats, need, P, width, height, max_int, part, token):
    """Bin and composite the tile rows of ``part`` (see :func:`_bin_intersections`).

    Returns (image [P, D], alpha [P], intersections, state): with ``token`` the state for the
    backward is kept in this process under it (state None), else returned (None without ``need``:
    no gradient wanted). ``need``: per packed splat, whether its gradient is wanted. [nnz] bool
    """
    import torch

    pix, entry, alpha, trans, end, clamped = _bin_intersections(
        means2d, conics, ops, depths, radii, cam_ids, width, height, max_int, part=part
    )
    img, acc, fk = _composite_forward(feats, pix, entry, alpha, trans, P)
    state = None
    if need is not None:
        nd = need.index_select(0, entry)
        sel = None if bool(nd.all()) else torch.nonzero(nd).reshape(-1)
        state = (pix, entry, alpha, trans, end, clamped, acc, fk, sel)
        if token:
            keep_state(token, (means2d, conics, ops, state))
            state = None
    return img, acc, int(pix.shape[0]), state


@register_op("composite_part_backward")
def _composite_part_backward(token, nnz: int, g_img, g_acc, width: int, height: int):
    """:func:`_composite_backward` of the part kept under ``token`` by :func:`_composite_part`."""
    means2d, conics, ops, state = take_state(token)
    return _composite_backward(means2d, conics, ops, nnz, state, g_img, g_acc, width, height)


def _make_split_composite_function():
    import torch

    class SplitComposite(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx, n, means2d, conics, ops, feats, depths, radii, cam_ids, need, P, width, height, max_int, worker, counts
        ):
            args = (means2d.detach(), conics.detach(), ops.detach(), depths, radii, cam_ids, feats.detach(), need)
            args += (P, width, height, max_int)
            token = new_token() if (worker is not None and need is not None) else 0
            if worker is not None:
                worker.submit("composite_part", *args, (1, n), token)
            img, acc, n0, state0 = _composite_part(*args, (0, n), 0)
            if worker is not None:
                img1, acc1, n1, state1 = worker.result()
            else:
                img1, acc1, n1, state1 = _composite_part(*args, (1, n), 0)
            ctx.states = (state0, state1)
            ctx.token, ctx.worker = token, worker
            ctx.nnz, ctx.width, ctx.height = feats.shape[0], width, height
            counts.append(n0 + n1)  # for the caller's meta (a Function returns tensors only)
            if need is not None:
                ctx.save_for_backward(means2d.detach(), conics.detach(), ops.detach())
            # Disjoint pixels: each sum adds 0 to a value, so it is exact.
            return img.add_(img1), acc.add_(acc1)

        @staticmethod
        def backward(ctx, g_img, g_acc):
            means2d, conics, ops = ctx.saved_tensors
            g_img = None if g_img is None else g_img.contiguous()
            g_acc = None if g_acc is None else g_acc.contiguous()
            w, h, nnz = ctx.width, ctx.height, ctx.nnz
            if ctx.token:
                ctx.worker.submit("composite_part_backward", ctx.token, nnz, g_img, g_acc, w, h)
            per = _composite_backward(means2d, conics, ops, nnz, ctx.states[0], g_img, g_acc, w, h)
            if ctx.token:
                per1 = ctx.worker.result()
            else:
                per1 = _composite_backward(means2d, conics, ops, nnz, ctx.states[1], g_img, g_acc, w, h)
            ctx.states = None
            per.add_(per1)  # part 0's sum, then part 1's: the same order with or without a helper
            return (None, per[:, 0:2], per[:, 2:5], per[:, 5], per[:, 6:]) + (None,) * 10

    return SplitComposite


def _bin_intersections(
    means2d,
    conics,
    ops,
    depths,
    radii,
    cam_ids,
    width: int,
    height: int,
    max_intersections: int,
    tile: int = 4,
    part: tuple[int, int] = (0, 1),
):
    """(pixel, splat) intersections that contribute, grouped by pixel in front-to-back order.

    Args:
        means2d: [nnz, 2]; conics: [nnz, 3]; ops: [nnz]; depths: [nnz]; radii: [nnz, 2] int32;
        cam_ids: camera of each packed splat. [nnz] (all detached)
        tile: tile edge, pixels.
        part: (k, n): with n = 1 every pixel; else piece 0 (k = 0: the tile rows whose index is
            a multiple of n) or piece 1 (k = 1: the other rows). Every pixel's list lies in one
            tile, so the pieces' lists together are the whole list; interleaved rows share the
            work in proportion (1 : n - 1) whatever the view shows.

    Returns:
        **pix**: global pixel id c*H*W + y*W + x of each kept intersection; each pixel's
        intersections are contiguous, nearest first (pixels are not in id order). [M] int64
        **entry**: packed splat index of each intersection. [M] int64
        **alpha**: min(0.999, o exp(-sigma)). [M]
        **trans**: transmittance before the intersection. [M]
        **end**: index of the last intersection of the same pixel. [M] int64
        **clamped**: where the 0.999 clamp is active (no gradient there). [M] bool

    Tiles, as gsplat's kernels: each splat joins the list of every 4x4 tile its bounding box
    touches, and only these (splat, tile) pairs (a few per splat) are sorted, by tile then depth.
    Every pixel of a tile then tests every splat of the tile's list, as an [area, E] broadcast
    grid; the kept candidates are put in pixel-major order by a counting sort (cumulative counts,
    one scatter), so the million-long intersection list is never sorted. 4x4 tiles keep the wasted
    candidates (pixels of a tile outside a splat's footprint) near 3x on 1-10 px splats while the
    pair sort stays short.
    """
    import torch

    dev, dt = means2d.device, means2d.dtype
    with torch.no_grad():
        order = torch.argsort(depths, stable=True)
        mx, my = means2d[order, 0], means2d[order, 1]
        rx, ry = radii[order, 0].to(dt), radii[order, 1].to(dt)
        # Pixels whose centre (i + 0.5) lies strictly inside (m - r, m + r), as tile ranges.
        x0 = torch.clamp(torch.floor(mx - rx - 0.5) + 1, 0, width).long()
        x1 = torch.clamp(torch.ceil(mx + rx - 0.5), 0, width).long()
        y0 = torch.clamp(torch.floor(my - ry - 0.5) + 1, 0, height).long()
        y1 = torch.clamp(torch.ceil(my + ry - 0.5), 0, height).long()
        tw, th = -(-width // tile), -(-height // tile)
        tx0, ty0 = torch.div(x0, tile, rounding_mode="floor"), torch.div(y0, tile, rounding_mode="floor")
        ntx = torch.where(x1 > x0, torch.div(x1 - 1, tile, rounding_mode="floor") + 1 - tx0, 0)
        nty = torch.where(y1 > y0, torch.div(y1 - 1, tile, rounding_mode="floor") + 1 - ty0, 0)
        cnt = ntx * nty
        # (splat, tile) pairs, emitted in depth order; a stable sort by tile keeps it per tile.
        sp = torch.repeat_interleave(torch.arange(order.shape[0], device=dev), cnt)
        loc = torch.arange(sp.shape[0], device=dev) - (torch.cumsum(cnt, 0) - cnt).index_select(0, sp)
        ntx_s = ntx.index_select(0, sp).clamp_min(1)
        tx = tx0.index_select(0, sp) + loc % ntx_s
        ty = ty0.index_select(0, sp) + torch.div(loc, ntx_s, rounding_mode="floor")
        if part[1] > 1:
            # This part's tile rows only (the pairs are a few per splat: cheap next to the grid).
            mine = torch.nonzero((ty.remainder(part[1]) == 0) != bool(part[0])).reshape(-1)
            sp, tx, ty = sp.index_select(0, mine), tx.index_select(0, mine), ty.index_select(0, mine)
        tid = (cam_ids.index_select(0, order.index_select(0, sp)) * th + ty) * tw + tx
        # A stable sort on int32 keys when they fit (~3x faster than on int64, same permutation).
        small = tid.numel() == 0 or int(tid.max()) < 2**31 - 1
        tid, perm = torch.sort(tid.int() if small else tid, stable=True)
        tid = tid.long()
        rank = sp.index_select(0, perm)  # depth rank of each list entry [E]
        tiles, tlen = torch.unique_consecutive(tid, return_counts=True)
        n_t = tiles.shape[0]
        tstart = torch.cumsum(tlen, 0) - tlen  # first list entry of each non-empty tile
        t_of = torch.repeat_interleave(torch.arange(n_t, device=dev), tlen)  # [E]
        area = tile * tile
        E = rank.shape[0]
        if E * area > max_intersections:
            raise BackendUnavailableError(
                f"{E * area} splat-pixel candidates exceed the CPU rasterizer's limit of {max_intersections}; "
                "render smaller images or fewer, smaller splats"
            )
        cam_t = torch.div(tiles, th * tw, rounding_mode="floor")
        t_in = tiles - cam_t * (th * tw)
        ty_t = torch.div(t_in, tw, rounding_mode="floor")
        tx_t = t_in - ty_t * tw
        # Candidates as an [area, E] grid: pixel of the tile x list entry (broadcast, no expansion;
        # the list axis last keeps the per-pixel cumulative count below contiguous).
        offx = torch.arange(area, device=dev) % tile
        offy = torch.div(torch.arange(area, device=dev), tile, rounding_mode="floor")
        ex = (tx_t * tile).index_select(0, t_of)
        ey = (ty_t * tile).index_select(0, t_of)
        entry_e = order.index_select(0, rank)
        dx = (ex.to(dt) + 0.5 - mx.index_select(0, rank))[None, :] + offx.to(dt)[:, None]
        dy = (ey.to(dt) + 0.5 - my.index_select(0, rank))[None, :] + offy.to(dt)[:, None]
        cn = conics.index_select(0, entry_e)
        # sigma = (a/2) dx dx + (c/2) dy dy + b dx dy, evaluated in place on the grid (fresh
        # grid-sized temporaries cost more than the arithmetic); the operation order is that of
        # the plain expression, so the values are bit-identical to it.
        sigma = torch.mul(dx, (0.5 * cn[:, 0])[None, :]).mul_(dx)
        tmp = torch.mul(dy, (0.5 * cn[:, 2])[None, :]).mul_(dy)
        sigma.add_(tmp)
        torch.mul(dx, cn[None, :, 1], out=tmp).mul_(dy)
        sigma.add_(tmp)
        del dx, dy, tmp
        # o exp(-sigma) >= 1/255  <=>  sigma <= ln(255 o): a compare instead of an exp on the grid;
        # a 1e-4 margin defers float ties to gsplat's exact test on the kept list below.
        smax = torch.log(ops.index_select(0, entry_e) / ALPHA_THRESHOLD) + 1e-4
        keep = (sigma >= 0) & (sigma <= smax[None, :])
        if width % tile or height % tile:
            keep &= ((ex[None, :] + offx[:, None]) < width) & ((ey[None, :] + offy[:, None]) < height)
        # Reorder the kept candidates pixel-major without sorting (a counting sort): a candidate's
        # place = kept candidates of earlier tiles + of earlier pixels of its tile + of nearer
        # splats on its own pixel, all from one cumulative count along the list axis.
        kc = torch.cumsum(keep, 1, dtype=torch.int32)  # [area, E]
        # Kept before each tile = kc at the column before its first entry (0 for the first tile,
        # which starts at column 0): gathered from kc directly instead of a zero-padded copy.
        base = kc.index_select(1, (tstart - 1).clamp_min(0)).T  # [T, area] kept before each tile
        if n_t:
            base[0] = 0
        cnt_tp = kc.index_select(1, tstart + tlen - 1).T - base
        off_tp = torch.cumsum(cnt_tp, 1) - cnt_tp
        tot = cnt_tp.sum(1)
        toff = ((torch.cumsum(tot, 0) - tot)[:, None] + off_tp - base - 1).reshape(-1)  # [T * area]
        flat = torch.nonzero(keep.reshape(-1)).reshape(-1)  # p * E + e
        if E * area < 2**31:
            flat = flat.int()  # int32 division and gathers are faster, the values the same
        p_k = torch.div(flat, E, rounding_mode="floor")
        e_k = flat - p_k * E
        dest = toff.index_select(0, t_of.index_select(0, e_k) * area + p_k) + kc.reshape(-1).index_select(0, flat)
        perm = torch.empty_like(flat).scatter_(0, dest.long(), flat)
        p_k = torch.div(perm, E, rounding_mode="floor")
        e_k = perm - p_k * E
        # Global pixel id = (c H + ey + offy) W + ex + offx, split into a per-entry and a
        # per-pixel-of-tile part (integers: exact) so only two gathers touch the long list.
        pix_e = (cam_t.index_select(0, t_of) * height + ey) * width + ex  # [E]
        pix = pix_e.index_select(0, e_k) + (offy * width + offx).index_select(0, p_k)
        entry = entry_e.index_select(0, e_k)
        raw = ops.index_select(0, entry) * torch.exp(-sigma.reshape(-1).index_select(0, perm))
        # Candidates that fail gsplat's exact test stay in the list with alpha 0 (log(1 - 0) = 0
        # leaves every running sum as it was) and leave it with the cut below: one compaction
        # of the long list instead of two.
        exact = raw >= ALPHA_THRESHOLD
        alpha = raw.clamp_max(0.999).masked_fill_(~exact, 0.0)
        # Each (tile, pixel-of-tile) group of the counting sort is one pixel's run: its bounds come
        # from the group counts directly (no scan of the long list for run boundaries).
        seg_first = ((torch.cumsum(tot, 0) - tot)[:, None] + off_tp).reshape(-1).long()
        seg_len = cnt_tp.reshape(-1).long()
        M = pix.shape[0]
        logt = torch.log1p(-alpha.to(torch.float64))
        csum = torch.cumsum(logt, 0)
        excl = csum - logt
        if M:
            # Minus the value at the run's first intersection, repeated along the run (empty runs
            # past the end read any valid index: they repeat it zero times).
            excl = excl - torch.repeat_interleave(
                excl.index_select(0, seg_first.clamp_max(M - 1)), seg_len, output_size=M
            )
        # gsplat stops before the splat that would take transmittance to T_STOP or below; the first
        # splat of a pixel always passes (alpha <= 0.999 keeps T >= 1e-3). Cutting a suffix of a
        # pixel's list leaves the transmittance of the kept intersections unchanged.
        live = (excl + logt > math.log(T_STOP)) & exact
        trans = torch.exp(excl).to(dt)
        if not bool(live.all()):
            # The cut keeps a prefix of each run (minus the alpha-0 riders), so the runs stay
            # contiguous: their new lengths are counts of live entries per run, from one cumsum.
            idx = torch.nonzero(live).reshape(-1)
            pix, entry, alpha, raw, trans = (t.index_select(0, idx) for t in (pix, entry, alpha, raw, trans))
            n_live = torch.zeros(M + 1, dtype=torch.int64, device=dev)
            torch.cumsum(live, 0, out=n_live[1:])
            seg_len = n_live.index_select(0, seg_first + seg_len) - n_live.index_select(0, seg_first)
            seg_first = torch.cumsum(seg_len, 0) - seg_len
            M = pix.shape[0]
        end = torch.repeat_interleave(seg_first + seg_len - 1, seg_len, output_size=M)
    return pix, entry, alpha, trans, end, raw > 0.999


def _ray_length_per_z(cam) -> np.ndarray:
    """Euclidean ray length per unit of camera z through each pixel centre. [H, W] float32"""
    u = (np.arange(cam.width) + 0.5 - cam.cx) / cam.fx
    v = (np.arange(cam.height) + 0.5 - cam.cy) / cam.fy
    return np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


def rasterize(
    means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int, *, rasterizer: str = "cpu", **kwargs
):
    """Render with gsplat (``rasterizer="gsplat"``, CUDA tensors) or :func:`rasterize_cpu`.

    Same arguments and outputs as :func:`rasterize_cpu`; ``meta["packed"]`` says which layout the
    meta arrays use (the CPU path is packed; the gsplat path runs unpacked, as gsplat's trainer does,
    which is faster on a GPU), and is what gsplat's strategies need as their ``packed`` argument.
    """
    if rasterizer == "gsplat":
        from gsplat import rasterization

        kw = {k: v for k, v in kwargs.items() if k not in ("max_intersections", "grad_mask", "tile_parts", "worker")}
        render, alphas, meta = rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height, packed=False, **kw
        )
        meta["packed"] = False
        return render, alphas, meta
    if rasterizer != "cpu":
        raise InputError(f"unknown rasterizer {rasterizer!r}; use 'cpu' or 'gsplat'")
    return rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **kwargs)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the body with ``n`` torch CPU threads (None: leave as is), restoring the count after.

    The CPU rasterizer issues hundreds of small tensor ops per render; on the shared 2-core
    machines measured (docs/splats.md) OpenMP's synchronisation made 2 threads 3-8x slower than 1.
    """
    import torch

    prev = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def render_cloud(
    cloud,
    cameras: list,
    *,
    sh_degree: int | None = None,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    rasterizer: str | None = None,
    cpu_threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Render a :class:`~worldgen.types.GaussianCloud` through worldgen cameras (evaluation, previews).

    Args:
        cloud: splats in the world frame.
        cameras: perspective cameras of one size (glTF camera frame).
        sh_degree: SH bands to use; defaults to all the cloud has.
        background: colour behind the splats, sRGB in [0, 1].
        rasterizer: "cpu", "gsplat", or None for :func:`select_rasterizer`'s choice.
        cpu_threads: torch threads while rendering on CPU (see :func:`torch_threads`); None keeps
            the caller's setting.

    Returns:
        dict: **rgb** [C, H, W, 3] float32 in [0, 1]; **depth** expected Euclidean ray distance,
        metres (+inf where alpha < 0.5) [C, H, W] float32; **alpha** [C, H, W] float32.
    """
    import torch

    name = rasterizer or select_rasterizer()[0]
    if name == "gsplat" and _gsplat_ready() is not None:
        name = "cpu"
    device = "cuda" if name == "gsplat" else "cpu"
    viewmats, Ks, w, h = cameras_to_gsplat(cameras)
    deg = cloud.sh_degree if sh_degree is None else min(sh_degree, cloud.sh_degree)
    t = lambda a: torch.tensor(np.asarray(a), device=device)  # noqa: E731 (copies: inputs are read-only)
    with torch.no_grad(), torch_threads(cpu_threads if device == "cpu" else None):
        out = []
        # Render cameras one at a time: memory then scales with one image.
        for i in range(len(cameras)):
            r, a, _ = rasterize(
                t(cloud.means),
                t(cloud.quats),
                t(cloud.scales),
                t(cloud.opacities),
                t(cloud.sh),
                t(viewmats[i : i + 1]),
                t(Ks[i : i + 1]),
                w,
                h,
                rasterizer=name,
                sh_degree=deg,
                backgrounds=t(np.asarray([background], np.float32)),
                render_mode="RGB+ED",
            )
            out.append((r[0].cpu().numpy(), a[0, ..., 0].cpu().numpy()))
    rgb = np.stack([o[0][..., :3] for o in out]).clip(0, 1).astype(np.float32)
    zdepth = np.stack([o[0][..., 3] for o in out]).astype(np.float32)
    alpha = np.stack([o[1] for o in out]).astype(np.float32)
    # Expected z-depth -> Euclidean ray length through each pixel centre.
    ray_scale = np.stack([_ray_length_per_z(c) for c in cameras])
    depth = np.where(alpha >= 0.5, zdepth * ray_scale, np.inf).astype(np.float32)
    return {"rgb": rgb, "depth": depth, "alpha": alpha}
