"""Gaussian initialisation from an RGB-D panorama: one splat per pixel, or merged to a budget.

Each splat sits on its pixel's ray at the pixel's depth. Its two tangent axes cover the pixel's
footprint on the surface: the pixel's angular size (2 pi / W x cos(latitude) across, pi / H down)
times the depth, stretched by the surface slant (the footprint of a ray cone on a plane with
normal n is d * alpha * (t - r (n.t) / (n.r)) for a tangent direction t of the sphere). The
surface normal comes from the depth map itself (cross product of one-sided neighbour
differences, each taken on the side with the smaller depth change so depth edges do not tilt
it). The third axis, along the normal, is thin. Colour is the SH DC term of the pixel's sRGB.
Sky pixels become a separate far layer on a dome of finite radius (facing the centre), or are
dropped. With ``max_splats`` pixels are merged into equal-area blocks (wider blocks near the
poles, where pixels are narrow) whose splat takes the nearest depth in the block and the mean
colour of the pixels at that depth, so merging never makes floaters between fore- and
background. A splat on the near side of a depth edge is narrowed across the edge
(``edge_shrink``): renderers composite the nearer splat first, and a full-size one fattened
every silhouette.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._check import check_rgbd
from ..errors import InputError
from ..geometry.equirect import equirect_directions
from ..types import SH_C0, DepthMap, GaussianCloud, Panorama, SemanticLayers


@dataclass(frozen=True)
class InitConfig:
    """Options of Gaussian initialisation.

    Args:
        footprint_sigma: tangent standard deviation as a fraction of the pixel footprint
            (default 0.6: neighbouring splats overlap enough to leave no gaps).
        thickness: standard deviation along the normal as a fraction of the smaller tangent
            one (default 0.1: flat discs lying on the surface).
        opacity: initial opacity in (0, 1) (default 0.95; refinement may start lower).
        sh_degree: spherical-harmonic degree 0-3; higher bands start at zero (default 0).
        sky: "dome" puts sky pixels on a sphere of ``sky_radius``, "drop" leaves them out.
        sky_radius: dome radius, metres; 0 = 1.5 x the farthest finite depth, at least 10 m.
        max_splats: merge pixels so there are at most this many splats; 0 = one per pixel.
        max_slant_deg: slant beyond which the footprint stops stretching, degrees (default 80).
        edge_shrink: factor on the footprint, across a depth edge, of a splat on the near side of
            it (a 4-neighbour more than ``edge_ratio`` farther, or sky). A renderer composites
            the nearer splat first, so a full-size splat's tail lies over the background pixel
            next to it and every silhouette comes out ~1 px fatter. 1 = off (default).
            0.3 helps unrefined splats in views at or below their resolution (street at the
            capture point, 160 px: 25.8 -> 26.4 dB; coast 30.4 -> 31.2) but refinement reaches
            the same result without it, and in views magnified 2x the narrowed rims let the
            background through (tests/test_clients_threejs.py's splat render: 22+ -> 21.0 dB).
        edge_ratio: depth ratio that makes a depth edge (default 1.1, as docs/geometry.md).
    """

    footprint_sigma: float = 0.6
    thickness: float = 0.1
    opacity: float = 0.95
    sh_degree: int = 0
    sky: Literal["dome", "drop"] = "dome"
    sky_radius: float = 0.0
    max_splats: int = 0
    max_slant_deg: float = 80.0
    edge_shrink: float = 1.0
    edge_ratio: float = 1.1


def init_gaussians(
    panorama: Panorama,
    depth: DepthMap,
    config: InitConfig = InitConfig(),
    semantics: SemanticLayers | None = None,
    eye_height: float = 1.6,
) -> GaussianCloud:
    """One Gaussian per valid pixel (or per merged block), in the world frame.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres, same size (+inf = sky).
        config: see :class:`InitConfig`.
        semantics: accepted for a uniform stage signature; the sky comes from ``depth.sky``.
        eye_height: accepted for a uniform stage signature (the depth is already metric).

    Returns:
        GaussianCloud, surface splats first (row-major pixel order), then sky splats.
    """
    _check(panorama, depth, config)
    H, W = depth.shape
    colour = _srgb(panorama)
    dirs = equirect_directions(H)  # [H, W, 3] float32
    d = np.where(depth.valid, depth.depth, 0.0).astype(np.float32)
    normals = _depth_normals(dirs, d, depth.valid)
    alpha_e, alpha_n = pixel_footprints(H, W)
    if config.edge_shrink != 1.0:
        near_e, near_n = near_side_of_edges(d, depth.valid, config.edge_ratio)
        alpha_e = np.where(near_e, alpha_e * np.float32(config.edge_shrink), alpha_e)
        alpha_n = np.where(near_n, alpha_n * np.float32(config.edge_shrink), alpha_n)
    sky_r = sky_radius(depth, config)
    layers = list(zip(("surface", "sky"), splat_layers(depth, config.sky)))

    n_total = sum(int(m.sum()) for _, m in layers)
    groups = None
    if config.max_splats and n_total > config.max_splats:
        groups = _merge_groups(tuple(m for _, m in layers), config.max_splats)

    parts = []
    for name, mask in layers:
        dd = d if name == "surface" else np.full((H, W), sky_r, np.float32)
        nn = normals if name == "surface" else -dirs
        if groups is None:
            sel = mask.reshape(-1)
            parts.append(
                _splats(
                    dirs.reshape(-1, 3)[sel],
                    dd.reshape(-1)[sel],
                    nn.reshape(-1, 3)[sel],
                    colour.reshape(-1, 3)[sel],
                    alpha_e.reshape(-1)[sel],
                    alpha_n.reshape(-1)[sel],
                    config,
                )
            )
        else:
            parts.append(_splats(*_merge(groups, mask, dirs, dd, nn, colour, alpha_e, alpha_n), config))
    return _to_cloud(*(np.concatenate([p[i] for p in parts]) for i in range(5)), config.sh_degree)


def _srgb(panorama: Panorama) -> np.ndarray:
    """The panorama's colour as sRGB floats in [0, 1]. [H, W, 3] float32"""
    return panorama.image if panorama.transfer == "srgb" else panorama.to_uint8().astype(np.float32) / 255.0


def pixel_footprints(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Angular size of every panorama pixel, radians: (across: along longitude x cos(latitude), down). [H, W] x 2"""
    lat = math.pi / 2 - math.pi * (np.arange(H, dtype=np.float32) + 0.5) / H
    across = np.broadcast_to(((2 * math.pi / W) * np.cos(lat))[:, None], (H, W)).astype(np.float32)
    return across, np.full((H, W), math.pi / H, np.float32)


def near_side_of_edges(d: np.ndarray, valid: np.ndarray, ratio: float = 1.1) -> tuple[np.ndarray, np.ndarray]:
    """Surface pixels on the near side of a depth edge: (across, down) masks. [H, W] bool x 2

    ``across`` is set where the left or right neighbour (longitude wraps) is more than ``ratio``
    times farther or is not a surface (sky, invalid); ``down`` likewise for the rows above and
    below (the poles' outer rows compare with themselves).

    Args:
        d: ray distance, metres (any value where not valid). [H, W]
        valid: surface pixels. [H, W] bool
        ratio: depth ratio of an edge (> 1).
    """
    far = np.where(valid, d, np.inf).astype(np.float32)
    lim = np.where(valid, d * np.float32(ratio), np.inf)
    across = (np.roll(far, 1, 1) > lim) | (np.roll(far, -1, 1) > lim)
    up = np.concatenate([far[:1], far[:-1]], 0)
    dn = np.concatenate([far[1:], far[-1:]], 0)
    down = (up > lim) | (dn > lim)
    return across & valid, down & valid


def sky_radius(depth: DepthMap, config: InitConfig) -> float:
    """Radius of the sky dome, metres: ``config.sky_radius``, or 1.5 x the farthest surface (at least 10 m)."""
    if config.sky_radius > 0:
        return config.sky_radius
    far = float(depth.depth[depth.valid].max()) if depth.valid.any() else 0.0
    return max(10.0, 1.5 * far)


def _to_cloud(means, quats, log_scales, logits, dc, sh_degree: int) -> GaussianCloud:
    """A GaussianCloud from :func:`_splats` outputs, higher SH bands at zero."""
    sh = np.zeros((len(means), (sh_degree + 1) ** 2, 3), np.float32)
    sh[:, 0] = dc
    return GaussianCloud(means, quats, log_scales, logits, sh)


def _check(panorama: Panorama, depth: DepthMap, config: InitConfig) -> None:
    check_rgbd(panorama, depth)
    if not 0 < config.opacity < 1:
        raise InputError(f"opacity {config.opacity} must lie strictly between 0 and 1")
    if config.sh_degree not in (0, 1, 2, 3):
        raise InputError(f"sh_degree {config.sh_degree} must be 0, 1, 2 or 3")
    if config.footprint_sigma <= 0 or config.thickness <= 0:
        raise InputError("footprint_sigma and thickness must be > 0")
    if config.max_splats < 0:
        raise InputError("max_splats must be >= 0 (0 = one splat per pixel)")
    if config.sky not in ("dome", "drop"):
        raise InputError(f"sky={config.sky!r}: use 'dome' or 'drop'")
    if not 0 < config.edge_shrink <= 1 or config.edge_ratio <= 1:
        raise InputError("edge_shrink must lie in (0, 1] and edge_ratio must be > 1")
    if not 0 < config.max_slant_deg < 90:
        raise InputError("max_slant_deg must lie in (0, 90)")


def _depth_normals(dirs: np.ndarray, d: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Unit surface normals facing the capture point, from one-sided depth differences.

    Args:
        dirs: unit rays. [H, W, 3] float32
        d: ray distance, metres (any value where not valid). [H, W] float32
        valid: [H, W] bool

    Returns:
        [H, W, 3] float32; -ray where no neighbour gives a tangent.
    """
    P = dirs * d[..., None]
    # Invalid pixels get a huge log-depth so any difference to them loses the comparison.
    logd = np.where(valid, np.log(np.maximum(d, 1e-12)), np.float32(1e30)).astype(np.float32)

    def tangent(fwd_p, bwd_p, fwd_l, bwd_l):
        jf = np.abs(fwd_l - logd)
        jb = np.abs(logd - bwd_l)
        use_f = jf <= jb
        t = np.where(use_f[..., None], fwd_p - P, P - bwd_p)
        return t, np.minimum(jf, jb) < 1e29

    tx, okx = tangent(np.roll(P, -1, 1), np.roll(P, 1, 1), np.roll(logd, -1, 1), np.roll(logd, 1, 1))
    big = np.full_like(logd[:1], 1e30)
    ty, oky = tangent(
        np.concatenate([P[1:], P[-1:]], 0),
        np.concatenate([P[:1], P[:-1]], 0),
        np.concatenate([logd[1:], big], 0),
        np.concatenate([big, logd[:-1]], 0),
    )
    n = np.cross(tx, ty)
    ln = np.sqrt(np.einsum("...i,...i->...", n, n))
    good = okx & oky & valid & (ln > 0)
    n /= np.where(good, ln, 1.0)[..., None]
    n[~good] = -dirs[~good]
    flip = np.einsum("...i,...i->...", n, dirs) > 0
    n[flip] *= -1
    return n.astype(np.float32, copy=False)


_CHUNK = 1 << 17


def _splats(
    r: np.ndarray,
    d: np.ndarray,
    n: np.ndarray,
    c: np.ndarray,
    alpha_e: np.ndarray,
    alpha_n: np.ndarray,
    cfg: InitConfig,
) -> tuple[np.ndarray, ...]:
    """:func:`_splats_block` over blocks of 131072 splats written into preallocated outputs.

    Blocking keeps the ~60 temporaries small: they stay in cache and are reused from the heap
    instead of being freshly mapped (and page-faulted) for every operation, which made a
    first, cold call on 2M splats ~3x slower than a warm one.
    """
    N = len(d)
    out = (
        np.empty((N, 3), np.float32),
        np.empty((N, 4), np.float32),
        np.empty((N, 3), np.float32),
        np.empty(N, np.float32),
        np.empty((N, 3), np.float32),
    )
    for s0 in range(0, N, _CHUNK):
        sl = slice(s0, min(N, s0 + _CHUNK))
        for dst, src in zip(out, _splats_block(r[sl], d[sl], n[sl], c[sl], alpha_e[sl], alpha_n[sl], cfg)):
            dst[sl] = src
    return out


def _splats_block(
    r: np.ndarray,
    d: np.ndarray,
    n: np.ndarray,
    c: np.ndarray,
    alpha_e: np.ndarray,
    alpha_n: np.ndarray,
    cfg: InitConfig,
) -> tuple[np.ndarray, ...]:
    """Splat parameters for rays r [N, 3] at depths d [N] with normals n [N, 3], colours c [N, 3]
    and angular footprints alpha_e (across, radians) and alpha_n (down) [N].

    Works on separate x/y/z component arrays (contiguous float32), which numpy runs several
    times faster than axis reductions over [N, 3] arrays.

    Returns:
        (means [N, 3], quats wxyz [N, 4], log_scales [N, 3], opacity logits [N], SH DC [N, 3]).
    """
    f32 = np.float32
    rx, ry, rz = (np.ascontiguousarray(r[:, i], f32) for i in range(3))
    nx, ny, nz = (np.ascontiguousarray(n[:, i], f32) for i in range(3))
    d = d.astype(f32, copy=False)
    N = len(d)
    means = np.empty((N, 3), f32)
    means[:, 0], means[:, 1], means[:, 2] = rx * d, ry * d, rz * d
    # Tangents of the sphere at r: east = (-rz, 0, rx)/|.| (growing longitude), north = r x east.
    el = np.sqrt(rx * rx + rz * rz)
    polar = el < 1e-6
    inv = np.where(polar, f32(0), 1 / np.where(polar, f32(1), el))
    ex, ez = np.where(polar, f32(1), -rz * inv), rx * inv
    ux, uy, uz = ry * ez, rz * ex - rx * ez, -ry * ex  # r x east with east_y = 0
    nr = nx * rx + ny * ry + nz * rz
    min_cos = f32(math.cos(math.radians(cfg.max_slant_deg)))
    nr = np.where(np.abs(nr) < min_cos, -min_cos, nr)
    ke = (nx * ex + nz * ez) / nr
    ku = (nx * ux + ny * uy + nz * uz) / nr
    se = d * alpha_e
    sn = d * alpha_n
    ax, ay, az = (ex - rx * ke) * se, (-ry * ke) * se, (ez - rz * ke) * se
    bx, by, bz = (ux - rx * ku) * sn, (uy - ry * ku) * sn, (uz - rz * ku) * sn
    la = np.sqrt(ax * ax + ay * ay + az * az)
    # t1 = a / |a| projected into the tangent plane (a already lies in it up to rounding).
    ia = 1 / np.maximum(la, f32(1e-30))
    t1x, t1y, t1z = ax * ia, ay * ia, az * ia
    dn = t1x * nx + t1y * ny + t1z * nz
    t1x, t1y, t1z = t1x - nx * dn, t1y - ny * dn, t1z - nz * dn
    it = 1 / np.maximum(np.sqrt(t1x * t1x + t1y * t1y + t1z * t1z), f32(1e-30))
    t1x, t1y, t1z = t1x * it, t1y * it, t1z * it
    t2x, t2y, t2z = ny * t1z - nz * t1y, nz * t1x - nx * t1z, nx * t1y - ny * t1x  # n x t1
    s1 = cfg.footprint_sigma * la
    s2 = cfg.footprint_sigma * np.abs(bx * t2x + by * t2y + bz * t2z)
    floor = f32(1e-5) + f32(1e-4 * cfg.footprint_sigma) * sn  # keep degenerate footprints positive
    s1 = np.maximum(s1, floor)
    s2 = np.maximum(s2, floor)
    s3 = np.maximum(f32(cfg.thickness) * np.minimum(s1, s2), f32(1e-6))
    log_scales = np.empty((N, 3), f32)
    log_scales[:, 0], log_scales[:, 1], log_scales[:, 2] = np.log(s1), np.log(s2), np.log(s3)
    quats = _frame_to_wxyz((t1x, t1y, t1z), (t2x, t2y, t2z), (nx, ny, nz))
    logit = math.log(cfg.opacity / (1 - cfg.opacity))
    logits = np.full(N, logit, f32)
    dc = ((c.astype(f32) - f32(0.5)) / f32(SH_C0)).astype(f32)
    return means, quats.astype(f32), log_scales, logits, dc


def _frame_to_wxyz(c0, c1, c2) -> np.ndarray:
    """Quaternions (w, x, y, z), w >= 0, of rotations given by their columns as component arrays.

    Branch-free: each component's magnitude from the diagonal, its sign from the antisymmetric
    part (valid for proper rotations); the square roots run in float64 so small components stay
    accurate.

    Args:
        c0, c1, c2: the rotation's columns (local x, y, z axes in world), each a tuple of
            x, y, z component arrays. [N] each

    Returns:
        [N, 4] float32.
    """
    m00, m11, m22 = (np.asarray(c, np.float64) for c in (c0[0], c1[1], c2[2]))
    q = np.empty((len(m00), 4))
    q[:, 0] = np.sqrt(np.maximum(0.0, 1 + m00 + m11 + m22))
    q[:, 1] = np.copysign(np.sqrt(np.maximum(0.0, 1 + m00 - m11 - m22)), c1[2] - c2[1])  # m21 - m12
    q[:, 2] = np.copysign(np.sqrt(np.maximum(0.0, 1 - m00 + m11 - m22)), c2[0] - c0[2])  # m02 - m20
    q[:, 3] = np.copysign(np.sqrt(np.maximum(0.0, 1 - m00 - m11 + m22)), c0[1] - c1[0])  # m10 - m01
    q /= np.sqrt((q * q).sum(1))[:, None]
    return q.astype(np.float32)


def _matrix_to_wxyz(m: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] to unit quaternions (w, x, y, z), w >= 0. [N, 4] float32"""
    return _frame_to_wxyz(*((m[:, 0, j], m[:, 1, j], m[:, 2, j]) for j in range(3)))


# --------------------------------------------------------------------------------------------
# Merging to a budget
# --------------------------------------------------------------------------------------------


def _group_ids(H: int, W: int, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-area blocks: s rows by s * m columns, m = floor(1 / cos(latitude)) of the block.

    Returns:
        (group id per pixel [H, W] int64, columns per block per row [H] int64, rows per block s).
    """
    rows = np.arange(H)
    band = rows // s
    lat_c = math.pi / 2 - math.pi * (np.minimum((band + 0.5) * s, H - 0.5)) / H
    m = np.maximum(1, np.floor(1.0 / np.maximum(np.cos(lat_c), 1e-6))).astype(np.int64)
    cols_per = np.minimum(s * m, W)
    per_band = -(-W // cols_per)  # blocks in each row's band
    band_first = np.concatenate([[0], np.cumsum(per_band[::s])])[:-1]
    # per_band is constant inside a band: index band starts by taking every s-th row.
    start = np.zeros(H, np.int64)
    start[:] = np.repeat(band_first, s)[:H]
    gid = start[:, None] + np.arange(W)[None, :] // cols_per[:, None]
    return gid, cols_per, np.int64(s)


def splat_layers(depth: DepthMap, sky: str) -> tuple[np.ndarray, ...]:
    """The pixel masks init_gaussians turns into splats and merges separately under a budget:
    the surface, then the sky when ``sky`` is "dome" and the panorama has any. [H, W] bool each"""
    if sky == "dome" and depth.sky.any():
        return (depth.valid, depth.sky)
    return (depth.valid,)


def _merge_groups(mask: np.ndarray | tuple[np.ndarray, ...], budget: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Smallest block size whose merged splats number at most ``budget``.

    Args:
        mask: [H, W] bool, or a tuple of them: the layers merged separately (surface and sky:
            a block holding pixels of both gives one splat per layer, so each layer's non-empty
            blocks are counted).
    """
    masks = mask if isinstance(mask, tuple) else (mask,)
    H, W = masks[0].shape
    s = 1
    while True:
        gid, cols_per, rows = _group_ids(H, W, s)
        n = sum(int(np.unique(gid[m]).size) for m in masks)
        if n <= budget or s >= H:
            return gid, cols_per, int(rows)
        s += 1


def _merge(groups, mask, dirs, d, n, colour, alpha_e, alpha_n):
    """Merge the masked pixels of each block into one splat's inputs (nearest depth wins).

    Returns:
        (rays [G, 3], depths [G], normals [G, 3], colours [G, 3], alpha_e [G], alpha_n [G]).
    """
    gid, cols_per, rows = groups
    H, W = mask.shape
    sel = mask.reshape(-1)
    g = gid.reshape(-1)[sel]
    dd = d.reshape(-1)[sel].astype(np.float64)
    ng = int(g.max()) + 1 if len(g) else 0
    dmin = np.full(ng, np.inf)
    np.minimum.at(dmin, g, dd)
    near = np.log(dd) <= np.log(dmin[g]) + 0.05  # pixels on the nearest surface
    g2 = g[near]
    cnt = np.bincount(g2, minlength=ng).astype(np.float64)
    used = cnt > 0

    def mean(x):
        x = x.reshape(-1, x.shape[-1])[sel][near]
        return (
            np.stack([np.bincount(g2, weights=x[:, k], minlength=ng) for k in range(x.shape[1])], 1)[used]
            / cnt[used, None]
        )

    # The centroid of the block's nearest-surface points stays on a plane (a convex combination
    # of coplanar points), unlike mean direction x mean depth.
    c = mean(dirs * d[..., None])
    depth = np.linalg.norm(c, axis=1)
    r = c / np.maximum(depth[:, None], 1e-12)
    nn = mean(n)
    nn /= np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-12)
    col = mean(colour)
    row_of = np.repeat(np.arange(H), W).reshape(H, W).reshape(-1)[sel][near]
    cols = np.bincount(g2, weights=cols_per[row_of].astype(np.float64), minlength=ng)[used] / cnt[used]
    lat = np.arcsin(np.clip(r[:, 1], -1, 1))
    # alpha_e / alpha_n carry init's edge shrink as a factor on the pixel footprint: a block keeps
    # the smallest factor of its nearest-surface pixels (a block on the near side of an edge).
    base_e, base_n = pixel_footprints(H, W)
    shrink = np.ones((ng, 2))
    for k, (a, b) in enumerate(((alpha_e, base_e), (alpha_n, base_n))):
        f = (a / np.maximum(b, 1e-30)).reshape(-1)[sel][near]
        np.minimum.at(shrink[:, k], g2, np.minimum(f, 1.0))
    shrink = shrink[used]
    ae = (2 * math.pi / W) * np.cos(lat) * cols * shrink[:, 0]
    an = math.pi / H * rows * shrink[:, 1]
    return (
        r.astype(np.float32),
        depth.astype(np.float32),
        nn.astype(np.float32),
        col.astype(np.float32),
        ae.astype(np.float32),
        an.astype(np.float32),
    )


# --------------------------------------------------------------------------------------------
# Backing layer
# --------------------------------------------------------------------------------------------


def backing_gaussians(
    panorama: Panorama, depth: DepthMap, factor: int = 2, push: float = 1.03, config: InitConfig = InitConfig()
) -> GaussianCloud:
    """A coarse copy of the panorama's farthest surfaces, ``push`` times farther: what shows through
    the gaps between the pixel splats.

    Classic 3DGS compositing (gsplat's, every viewer's) covers a pixel with
    ``1 - prod(1 - o g_k)``; between the centres of a lattice of Gaussians that dips, so a view
    shows the black background through a moire of 1-3 % (more for narrower splats), which
    shifts with the view's pixel grid and no colour solve can cancel. One splat per block of
    ``factor x factor`` panorama pixels, behind the pixel splats, fills those gaps with the
    block's colour, which lets the pixel splats be narrower (sharper) without the moire
    (docs/splats.md, "Capture-point sharpness"). Each block takes its farthest surface (sky
    counts as farthest) and the mean colour of its pixels within 5 % of that distance, so a
    block across a silhouette backs it with the background, never with a fatter foreground.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres (+inf = sky).
        factor: block side, panorama pixels (>= 1). The grid is ceil(H / factor) rows.
        push: distance factor behind the surface (> 1).
        config: footprint, thickness, opacity, sky and SH degree of the splats (as init_gaussians;
            the footprint is of the block, ``max_splats`` is ignored).

    Returns:
        GaussianCloud of the backing splats only, sky blocks on the sky dome x ``push`` (with
        ``config.sky == "dome"``).
    """
    check_rgbd(panorama, depth)
    if factor < 1 or not push > 1:
        raise InputError("backing splats need factor >= 1 and push > 1")
    H, W = depth.shape
    h = -(-H // factor)
    w = 2 * h
    colour = _srgb(panorama)
    sky_r = sky_radius(depth, config)
    # Sky is the farthest thing a block can hold; invalid pixels (none in a DepthMap) never win.
    d = np.where(depth.sky, np.inf, depth.depth).astype(np.float64)
    rows = (np.arange(H) * h) // H
    cols = (np.arange(W) * w) // W
    gid = (rows[:, None] * w + cols[None, :]).reshape(-1)
    dd = d.reshape(-1)
    far = np.full(h * w, -1.0)
    np.maximum.at(far, gid, dd)
    # Pixels on the block's farthest surface (within 5 %), or its sky pixels when it has sky.
    on = np.where(np.isinf(far[gid]), np.isinf(dd), dd >= far[gid] / 1.05)
    cnt = np.bincount(gid[on], minlength=h * w)
    col = (
        np.stack([np.bincount(gid[on], weights=colour.reshape(-1, 3)[on, k], minlength=h * w) for k in range(3)], 1)
        / np.maximum(cnt, 1)[:, None]
    )
    dist = np.bincount(gid[on], weights=np.where(np.isinf(dd[on]), 0.0, dd[on]), minlength=h * w) / np.maximum(cnt, 1)
    is_sky = np.isinf(far)
    keep = ~is_sky | (config.sky == "dome")
    dirs = equirect_directions(h)
    # Surface normals of the coarse far-surface map (as init's), so a block of ground lies on the
    # ground instead of standing up towards the capture point; sky blocks face the centre.
    normals = _depth_normals(dirs, dist.reshape(h, w).astype(np.float32), ~is_sky.reshape(h, w)).reshape(-1, 3)
    dist = np.where(is_sky, sky_r, dist) * push
    r = dirs.reshape(-1, 3)
    normals = np.where(is_sky[:, None], -r, normals)
    across, down = pixel_footprints(h, w)
    k = keep
    return _to_cloud(
        *_splats(
            r[k],
            dist[k].astype(np.float32),
            normals[k],
            col[k].astype(np.float32),
            across.reshape(-1)[k],
            down.reshape(-1)[k],
            config,
        ),
        config.sh_degree,
    )
