"""Differentiable rasterization of 3D Gaussians: gsplat on CUDA, a vectorised PyTorch path elsewhere.

Both paths take and return what ``gsplat.rasterization`` does (activated scales and opacities,
wxyz quaternions, world->camera view matrices in the OpenCV camera frame, pinhole intrinsics)
so the optimiser in :mod:`worldgen.splats.refine` does not care which one runs.

The CPU path (:func:`rasterize_cpu`) follows gsplat's forward semantics: EWA projection with
gsplat's Jacobian clamping and ``eps2d`` blur, gsplat's opacity-aware bounding radius, alpha =
min(0.999, o * exp(-sigma)) with contributions under 1/255 skipped and a pixel finished once its
transmittance would fall to 1e-4 or below. Instead of per-tile loops it works on flat arrays of
(splat, pixel) intersections:

1. project every Gaussian to every camera at once, cull, and keep the visible (camera, splat)
   pairs packed ([nnz, ...], like gsplat's ``packed=True``);
2. bin: each visible splat emits one intersection per pixel of its bounding box, in front-to-back
   depth order (``repeat_interleave`` over box areas), intersections whose alpha is below 1/255
   are dropped, and a stable sort by pixel id groups each pixel's list while keeping depth order;
3. composite: transmittance is a segmented exclusive cumulative sum of log(1 - alpha) (float64,
   so long lists keep precision), truncated where gsplat stops; weights are scattered back to
   pixels with ``index_add``.

Steps 1 and 3 run under autograd; step 2 is index bookkeeping done without gradients, as
gsplat's tile intersection is. See docs/splats.md for the design and measurements.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from typing import Any, Literal

import numpy as np

from ..errors import BackendUnavailableError, InputError

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
        return "cpu", ("gsplat has no prebuilt kernels and no CUDA toolkit (nvcc) to build them; "
                       "set CUDA_HOME or install a gsplat wheel with kernels")
    build = _gsplat_build_dir()
    if build and os.path.exists(os.path.join(build, "gsplat_cuda.so")):
        return "gsplat", f"CUDA device {torch.cuda.get_device_name(0)}; gsplat kernels built in {build}"
    return "gsplat", (f"CUDA device {torch.cuda.get_device_name(0)}; gsplat's kernels compile on first use "
                      "(can take 20+ minutes: set TORCH_CUDA_ARCH_LIST to the card's architecture and MAX_JOBS=4)")


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
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(q.shape[:-1] + (3, 3))


def project_gaussians(means, quats, scales, opacities, viewmats, Ks, width: int, height: int,
                      eps2d: float = 0.3, near_plane: float = 0.01, far_plane: float = 1e10,
                      radius_clip: float = 0.0, antialiased: bool = False) -> dict[str, Any]:
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
    det = a * c - b0 * b0
    comp = torch.sqrt(torch.clamp((a0 * c0 - b0 * b0) / det.clamp_min(1e-10), min=0.0)) if antialiased else None
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
    return {"means2d": means2d, "conics": conics, "depths": z, "radii": radii,
            "compensations": comp, "means_c": means_c}


# --------------------------------------------------------------------------------------------
# Spherical harmonics
# --------------------------------------------------------------------------------------------

_SH_C0 = 0.28209479177387814
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
          -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


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
        out = (out + _SH_C2[0] * xy * coeffs[..., 4, :] + _SH_C2[1] * yz * coeffs[..., 5, :]
               + _SH_C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :]
               + _SH_C2[3] * xz * coeffs[..., 7, :] + _SH_C2[4] * (xx - yy) * coeffs[..., 8, :])
    if degree >= 3:
        out = (out + _SH_C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :]
               + _SH_C3[1] * xy * z * coeffs[..., 10, :]
               + _SH_C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :]
               + _SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
               + _SH_C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :]
               + _SH_C3[5] * z * (xx - yy) * coeffs[..., 14, :]
               + _SH_C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :])
    if degree > 3:
        raise InputError(f"SH degree {degree} is not supported; use 0..3")
    return out


# --------------------------------------------------------------------------------------------
# CPU rasterizer
# --------------------------------------------------------------------------------------------


def rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
                  near_plane: float = 0.01, far_plane: float = 1e10, radius_clip: float = 0.0,
                  eps2d: float = 0.3, sh_degree: int | None = None, backgrounds=None,
                  render_mode: RenderMode = "RGB",
                  rasterize_mode: Literal["classic", "antialiased"] = "classic",
                  max_intersections: int = 60_000_000):
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
            f"scales {list(scales.shape)}, opacities {list(opacities.shape)}; expected [N,3], [N,4], [N,3], [N]")
    if viewmats.shape != (C, 4, 4) or Ks.shape != (C, 3, 3):
        raise InputError(f"viewmats {list(viewmats.shape)} / Ks {list(Ks.shape)} must be [C, 4, 4] / [C, 3, 3]")
    dev, dt = means.device, means.dtype

    proj = project_gaussians(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d,
                             near_plane, far_plane, radius_clip, rasterize_mode == "antialiased")
    vis = (proj["radii"] > 0).all(dim=-1)  # [C, N]
    cam_ids, gs_ids = torch.nonzero(vis, as_tuple=True)
    means2d = proj["means2d"][cam_ids, gs_ids]  # [nnz, 2], leaf of the 2D gradient statistics
    conics = proj["conics"][cam_ids, gs_ids]
    depths = proj["depths"][cam_ids, gs_ids]
    radii = proj["radii"][cam_ids, gs_ids]
    ops = opacities[gs_ids]
    if proj["compensations"] is not None:
        ops = ops * proj["compensations"][cam_ids, gs_ids]

    # Per-visible-splat features.
    if sh_degree is not None:
        if colors.dim() != 3 or colors.shape[0] != N or colors.shape[-1] != 3:
            raise InputError(f"SH colours must be [N, K, 3], got {list(colors.shape)}")
        if (sh_degree + 1) ** 2 > colors.shape[1]:
            raise InputError(f"sh_degree {sh_degree} needs {(sh_degree + 1) ** 2} coefficients, got {colors.shape[1]}")
        campos = torch.linalg.inv(viewmats)[:, :3, 3]
        dirs = means[gs_ids] - campos[cam_ids]
        feats = torch.clamp_min(eval_sh(sh_degree, dirs, colors[gs_ids]) + 0.5, 0.0)
    elif colors.dim() == 2 and colors.shape[0] == N:
        feats = colors[gs_ids]
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
    pix, entry, start = _bin_intersections(means2d.detach(), conics.detach(), ops.detach(), depths.detach(),
                                           radii, cam_ids, width, height, max_intersections)

    # Differentiable compositing over the kept intersections.
    m2 = means2d.index_select(0, entry)
    cn = conics.index_select(0, entry)
    px = (pix % width).to(dt) + 0.5
    py = ((pix // width) % height).to(dt) + 0.5
    dx, dy = px - m2[:, 0], py - m2[:, 1]
    sigma = 0.5 * (cn[:, 0] * dx * dx + cn[:, 2] * dy * dy) + cn[:, 1] * dx * dy
    alpha = torch.clamp_max(ops.index_select(0, entry) * torch.exp(-sigma), 0.999)
    logt = torch.log1p(-alpha).double()
    csum = torch.cumsum(logt, 0)
    excl = csum - logt
    trans = torch.exp(excl - excl.index_select(0, start)).to(dt)  # transmittance before each hit
    w = alpha * trans
    img = torch.zeros(P, D, device=dev, dtype=dt).index_add(0, pix, w[:, None] * feats.index_select(0, entry))
    acc = torch.zeros(P, device=dev, dtype=dt).index_add(0, pix, w)
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
        "camera_ids": cam_ids, "gaussian_ids": gs_ids, "radii": radii, "means2d": means2d,
        "depths": depths, "conics": conics, "opacities": ops, "width": width, "height": height,
        "n_cameras": C, "n_batches": 1, "packed": True, "n_intersections": int(pix.shape[0]),
    }
    return render, alphas, meta


def _bin_intersections(means2d, conics, ops, depths, radii, cam_ids, width: int, height: int,
                       max_intersections: int):
    """(pixel, splat) intersections that contribute, grouped by pixel in front-to-back order.

    Args:
        means2d: [nnz, 2]; conics: [nnz, 3]; ops: [nnz]; depths: [nnz]; radii: [nnz, 2] int32;
        cam_ids: camera of each packed splat. [nnz] (all detached)

    Returns:
        **pix**: global pixel id c*H*W + y*W + x of each kept intersection, sorted. [M] int64
        **entry**: packed splat index of each intersection. [M] int64
        **start**: index of the first intersection of the same pixel. [M] int64
    """
    import torch

    dev = means2d.device
    with torch.no_grad():
        order = torch.argsort(depths, stable=True)
        mx, my = means2d[order, 0], means2d[order, 1]
        rx, ry = radii[order, 0].to(means2d.dtype), radii[order, 1].to(means2d.dtype)
        # Pixels whose centre (i + 0.5) lies strictly inside (m - r, m + r).
        x0 = torch.clamp(torch.floor(mx - rx - 0.5) + 1, 0, width).long()
        x1 = torch.clamp(torch.ceil(mx + rx - 0.5), 0, width).long()
        y0 = torch.clamp(torch.floor(my - ry - 0.5) + 1, 0, height).long()
        y1 = torch.clamp(torch.ceil(my + ry - 0.5), 0, height).long()
        bw = (x1 - x0).clamp_min(0)
        bh = (y1 - y0).clamp_min(0)
        cnt = bw * bh
        total = int(cnt.sum())
        if total > max_intersections:
            raise BackendUnavailableError(
                f"{total} splat-pixel intersections exceed the CPU rasterizer's limit of {max_intersections}; "
                "render smaller images or fewer, smaller splats")
        e = torch.repeat_interleave(torch.arange(order.shape[0], device=dev), cnt)
        first = torch.cumsum(cnt, 0) - cnt
        local = torch.arange(total, device=dev) - first.index_select(0, e)
        bwe = bw.index_select(0, e)
        xs = x0.index_select(0, e) + local % bwe.clamp_min(1)
        ys = y0.index_select(0, e) + torch.div(local, bwe.clamp_min(1), rounding_mode="floor")
        entry = order.index_select(0, e)
        dx = xs.to(means2d.dtype) + 0.5 - mx.index_select(0, e)
        dy = ys.to(means2d.dtype) + 0.5 - my.index_select(0, e)
        cn = conics.index_select(0, entry)
        sigma = 0.5 * (cn[:, 0] * dx * dx + cn[:, 2] * dy * dy) + cn[:, 1] * dx * dy
        alpha = torch.clamp_max(ops.index_select(0, entry) * torch.exp(-sigma), 0.999)
        keep = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
        pix = (cam_ids.index_select(0, entry) * (height * width) + ys * width + xs)[keep]
        entry = entry[keep]
        alpha = alpha[keep]
        # Stable sort by pixel keeps each pixel's list in depth order (intersections were
        # emitted front to back).
        pix, perm = torch.sort(pix, stable=True)
        entry = entry.index_select(0, perm)
        alpha = alpha.index_select(0, perm)
        start = _segment_starts(pix)
        logt = torch.log1p(-alpha.double())
        csum = torch.cumsum(logt, 0)
        incl = csum - (csum - logt).index_select(0, start)
        # gsplat stops before the splat that would take transmittance to T_STOP or below; the first
        # splat of a pixel always passes (alpha <= 0.999 keeps T >= 1e-3).
        live = incl > math.log(T_STOP)
        if not bool(live.all()):
            pix, entry = pix[live], entry[live]
            start = _segment_starts(pix)
    return pix, entry, start


def _segment_starts(sorted_ids):
    """Index of the first element of each run of equal values, per element. [M] int64"""
    import torch

    m = sorted_ids.shape[0]
    idx = torch.arange(m, device=sorted_ids.device)
    if m == 0:
        return idx
    is_start = torch.ones(m, dtype=torch.bool, device=sorted_ids.device)
    is_start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return torch.cummax(torch.where(is_start, idx, torch.zeros_like(idx)), 0).values


def _ray_length_per_z(cam) -> np.ndarray:
    """Euclidean ray length per unit of camera z through each pixel centre. [H, W] float32"""
    u = (np.arange(cam.width) + 0.5 - cam.cx) / cam.fx
    v = (np.arange(cam.height) + 0.5 - cam.cy) / cam.fy
    return np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


def rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int, *,
              rasterizer: str = "cpu", **kwargs):
    """Render with gsplat (``rasterizer="gsplat"``, CUDA tensors) or :func:`rasterize_cpu`.

    Same arguments and outputs as :func:`rasterize_cpu`; ``meta["packed"]`` says which layout the
    meta arrays use (the CPU path is packed; the gsplat path runs unpacked, as gsplat's trainer does,
    which is faster on a GPU), and is what gsplat's strategies need as their ``packed`` argument.
    """
    if rasterizer == "gsplat":
        from gsplat import rasterization

        kw = {k: v for k, v in kwargs.items() if k != "max_intersections"}
        render, alphas, meta = rasterization(means, quats, scales, opacities, colors, viewmats, Ks,
                                             width, height, packed=False, **kw)
        meta["packed"] = False
        return render, alphas, meta
    if rasterizer != "cpu":
        raise InputError(f"unknown rasterizer {rasterizer!r}; use 'cpu' or 'gsplat'")
    return rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **kwargs)


def render_cloud(cloud, cameras: list, *, sh_degree: int | None = None,
                 background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 rasterizer: str | None = None) -> dict[str, np.ndarray]:
    """Render a :class:`~worldgen.types.GaussianCloud` through worldgen cameras (evaluation, previews).

    Args:
        cloud: splats in the world frame.
        cameras: perspective cameras of one size (glTF camera frame).
        sh_degree: SH bands to use; defaults to all the cloud has.
        background: colour behind the splats, sRGB in [0, 1].
        rasterizer: "cpu", "gsplat", or None for :func:`select_rasterizer`'s choice.

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
    with torch.no_grad():
        out = []
        # Render cameras one at a time: memory then scales with one image.
        for i in range(len(cameras)):
            r, a, _ = rasterize(t(cloud.means), t(cloud.quats), t(cloud.scales), t(cloud.opacities),
                                t(cloud.sh), t(viewmats[i:i + 1]), t(Ks[i:i + 1]), w, h, rasterizer=name,
                                sh_degree=deg, backgrounds=t(np.asarray([background], np.float32)),
                                render_mode="RGB+ED")
            out.append((r[0].cpu().numpy(), a[0, ..., 0].cpu().numpy()))
    rgb = np.stack([o[0][..., :3] for o in out]).clip(0, 1).astype(np.float32)
    zdepth = np.stack([o[0][..., 3] for o in out]).astype(np.float32)
    alpha = np.stack([o[1] for o in out]).astype(np.float32)
    # Expected z-depth -> Euclidean ray length through each pixel centre.
    ray_scale = np.stack([_ray_length_per_z(c) for c in cameras])
    depth = np.where(alpha >= 0.5, zdepth * ray_scale, np.inf).astype(np.float32)
    return {"rgb": rgb, "depth": depth, "alpha": alpha}
