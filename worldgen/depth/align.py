"""Global alignment of per-view depth, metric scale from the ground, and the seamless merge.

Each view i gives a map v_i over its pixels that is *affine in inverse z-depth* (what relative
models such as Depth Anything and DPT predict: disparity up to an unknown scale and shift), or
inverse z-depth of a metric model (scale errors only). The aligned inverse Euclidean distance of a
view pixel is

    q_i = (s_i * v_i + t_i) / L_i,    L_i = |(x, y, 1)| of the pixel (z-depth -> ray distance),

linear in the unknowns (s_i, t_i). Every panorama direction seen by two views gives one equation
q_i = q_j; all of them, from all view pairs at once, form one sparse least-squares problem, so no
error accumulates from view to view. Robust (Cauchy) weights, re-estimated a few times, discount
pixels where the views disagree (occlusion edges, model failures). Equations are relative (divided
by the local level), so near and far pixels count alike.

The overlaps fix everything but one overall scale and, weakly, one overall shift. The ground fixes
both: with the camera at ``eye_height`` above a horizontal ground, a ground pixel at latitude
lat < 0 lies at inverse distance sin(-lat) / eye_height. The ground pixels are found as the
dominant horizontal plane below the camera (the mode of the height below the eye, over pixels
below the horizon), then added as absolute equations, and re-selected by their residual. Where the
views disagree (no real model is exact up to scale and shift), the overall level is also solved held
at the ground's height, and the solution with more of the panorama on the ground plane is kept.

The merge pastes every view back at the panorama's resolution, blending overlaps in inverse
distance with weights that fall smoothly to zero at each view's border, so no seam remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..geometry import equirect_directions
from ..types import Camera
from .views import (
    project,
    ray_length,
    sample_view,
    sample_view_edges,
    sample_view_nearest,
    view_rows,
)


@dataclass(frozen=True)
class Alignment:
    """Per-view scale and shift, and how the metric scale was found.

    Args:
        scale, shift: per view: aligned inverse z = scale * value + shift. [N] float64
        ground_found: whether a ground plane below the camera supported the metric scale.
        ground_scale: factor that took the overlap-only (relative) solution's distances to metres.
        ground_residual: RMS of (height below eye / eye height - 1) over the ground pixels.
        ground_support: number of alignment-grid pixels on the fitted ground.
        overlap_residual: median relative disagreement of overlapping views after alignment.
        report: the same as JSON-ready facts for the manifest.
        confidence: per view, in [0, 1]: how much of the view held valid pixels that overlap
            others (a view that sees almost only sky is poorly determined and weighs less in the merge). [N]
    """

    scale: np.ndarray
    shift: np.ndarray
    ground_found: bool
    ground_scale: float | None
    ground_residual: float | None
    ground_support: int
    overlap_residual: float
    report: dict = field(default_factory=dict)
    confidence: np.ndarray | None = None


@dataclass
class _Samples:
    """One view's samples at the alignment grid: q = s * a + t * b on pixels ``idx``."""

    idx: np.ndarray
    a: np.ndarray
    b: np.ndarray
    w: np.ndarray


def _grid_samples(values, valid, cameras, grid_height, margin=0.02):
    dirs = equirect_directions(grid_height).reshape(-1, 3)
    w2 = 2 * grid_height
    out = []
    for v, ok, cam in zip(values, valid, cameras):
        rows = view_rows(cam, grid_height)
        pr = project(dirs[rows.start * w2 : rows.stop * w2], cam, rows.start * w2)
        inv_l = 1.0 / ray_length(cam)
        a = sample_view(v.astype(np.float32) * inv_l, pr.px, pr.py)
        b = sample_view(inv_l, pr.px, pr.py)
        keep = sample_view_nearest(ok, pr.px, pr.py).astype(bool) & (pr.edge > margin) & np.isfinite(a)
        out.append(_Samples(pr.index[keep], a[keep].astype(np.float64), b[keep].astype(np.float64), pr.edge[keep]))
    return dirs, out


def _pair_rows(samples):
    """Overlap equations: (pixel, view i, view j) for every pixel two valid views share."""
    ii, jj, pi, pj = [], [], [], []
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            _, ki, kj = np.intersect1d(samples[i].idx, samples[j].idx, assume_unique=True, return_indices=True)
            if len(ki):
                ii.append(np.full(len(ki), i))
                jj.append(np.full(len(ki), j))
                pi.append(ki)
                pj.append(kj)
    if not ii:
        return None
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(pi), np.concatenate(pj)


def _cauchy(e: np.ndarray) -> np.ndarray:
    """Robust weights of normalised residuals; sigma from their median absolute value."""
    sigma = max(1.4826 * float(np.median(np.abs(e))) if e.size else 0.0, 1e-4)
    return 1.0 / (1.0 + (e / (2.0 * sigma)) ** 2)


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    """The value of ``v`` at which half the weight ``w`` lies below. [N], [N] -> float"""
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    return float(v[order][int(np.searchsorted(cum, 0.5 * cum[-1]))])


def align_views(
    values: np.ndarray,
    valid: np.ndarray,
    cameras: list[Camera],
    eye_height: float = 1.6,
    *,
    fit_shift: bool = True,
    use_ground: bool = True,
    grid_height: int = 128,
    iterations: int = 6,
    ground_min_lat_deg: float = 12.0,
    ground_tolerance: float = 0.08,
    fallback_median_m: float = 5.0,
    ground_weight: float = 0.0005,
) -> Alignment:
    """Solve every view's scale (and shift) from all overlaps at once, and the metric scale from the ground.

    Args:
        values: per-view inverse z-depth up to scale and shift (relative models' disparity), or
            1 / metric z-depth. [N, h, w]
        valid: per-view pixels to use (False on sky and where the model has nothing). [N, h, w] bool
        cameras: the views' cameras (from :func:`worldgen.depth.views.sphere_views`).
        eye_height: camera height above the ground, metres.
        fit_shift: solve a shift per view (relative models); False keeps shift 0 (metric models).
        use_ground: scale (and shift) so that the ground lies at -eye_height; False keeps the
            overlap-only solution, normalised so the views' geometric-mean scale is 1.
        grid_height: rows of the equirect grid on which the overlaps are compared (128: 32k directions).
        iterations: robust re-weighting rounds.
        ground_min_lat_deg: only pixels at least this far below the horizon may be ground.
        ground_tolerance: a pixel is ground while its height below the eye is within this relative
            distance of the eye height.
        fallback_median_m: without a usable ground (and use_ground), the median distance is set to this.
        ground_weight: total weight of the ground equations relative to the overlap equations. Small:
            the overlaps fix the views relative to each other; the ground only the overall scale and
            shift, which the overlaps leave (nearly) free, so uneven ground bends nothing else.

    Returns:
        The :class:`Alignment`.
    """
    values = np.asarray(values)
    valid = np.asarray(valid, bool)
    n = len(cameras)
    if values.ndim != 3 or values.shape[0] != n or valid.shape != values.shape:
        raise InputError(f"align_views needs [N, h, w] values and masks for {n} views, got {values.shape}")
    if eye_height <= 0:
        raise InputError(f"eye height {eye_height} m must be > 0")
    dirs, samples = _grid_samples(values, valid, cameras, grid_height)
    lat = np.arcsin(np.clip(dirs[:, 1].astype(np.float64), -1, 1))
    coslat = np.cos(lat)
    pairs = _pair_rows(samples)
    nun = 2 * n
    # initial guess: every view at level 1
    x = np.zeros(nun)
    for k, sm in enumerate(samples):
        med = float(np.median(sm.a)) if sm.a.size else 1.0
        x[2 * k] = 1.0 / med if (fit_shift and med > 0) else 1.0
    if pairs is None:
        raise InputError("the depth views do not overlap; use views of 90° or more")
    vi, vj, pi_, pj_ = pairs
    offsets = np.cumsum([0] + [len(s.a) for s in samples])
    ga = np.concatenate([s.a for s in samples])
    gb = np.concatenate([s.b for s in samples])
    gidx = np.concatenate([s.idx for s in samples])
    gview = np.concatenate([np.full(len(s.a), k) for k, s in enumerate(samples)])
    ri = offsets[vi] + pi_
    rj = offsets[vj] + pj_
    pix_w = coslat[gidx[ri]]  # equal-area weighting of directions

    def q_of(xv, rows):
        return xv[2 * gview[rows]] * ga[rows] + xv[2 * gview[rows] + 1] * gb[rows]

    # overlap rows: coefficients (a_i, b_i, -a_j, -b_j) on columns (2i, 2i+1, 2j, 2j+1); fixed
    cols = np.stack([2 * vi, 2 * vi + 1, 2 * vj, 2 * vj + 1], 1)
    coef = np.stack([ga[ri], gb[ri], -ga[rj], -gb[rj]], 1)

    def solve(xv, ground_rows=None, ground_target=None, gauge=True, rounds=iterations):
        wts = None
        for _ in range(rounds):
            qi, qj = q_of(xv, ri), q_of(xv, rj)
            lvl = np.maximum(0.5 * (np.abs(qi) + np.abs(qj)), 1e-9)
            e = (qi - qj) / lvl
            wts = pix_w * _cauchy(e) / lvl**2
            m = np.zeros((nun, nun))
            rhs = np.zeros(nun)
            _accumulate(m, cols, coef, wts)
            total = float(wts.sum()) or 1.0
            if ground_rows is not None and len(ground_rows):
                qg = q_of(xv, ground_rows)
                eg = (qg - ground_target) / ground_target
                wg = coslat[gidx[ground_rows]] * _cauchy(eg) / ground_target**2
                wg *= ground_weight * total / max(float(wg.sum()), 1e-12)
                gcols = np.stack([2 * gview[ground_rows], 2 * gview[ground_rows] + 1], 1)
                gcoef = np.stack([ga[ground_rows], gb[ground_rows]], 1)
                _accumulate(m, gcols, gcoef, wg)
                rhs += np.bincount(gcols[:, 0], wg * gcoef[:, 0] * ground_target, minlength=nun)
                rhs += np.bincount(gcols[:, 1], wg * gcoef[:, 1] * ground_target, minlength=nun)
            if gauge:
                # mean level of all views = current mean level (fixes the overall scale)
                g = np.zeros(nun)
                for k, sm in enumerate(samples):
                    if sm.a.size:
                        g[2 * k] = float(np.median(sm.a))
                        g[2 * k + 1] = float(np.median(sm.b))
                big = 1e3 * total / max(n, 1)
                m += big * np.outer(g, g)
                rhs += big * g * float(g @ xv)
            # without ground equations, a weak pull of the shifts towards 0 settles the weakly
            # determined overall shift; the ground equations settle it otherwise
            ridge = (1e-6 if ground_rows is None else 1e-12) * total
            for k in range(n):
                m[2 * k + 1, 2 * k + 1] += ridge * (float(np.median(samples[k].b)) if samples[k].b.size else 1.0) ** 2
                m[2 * k, 2 * k] += 1e-12 * total
            if not fit_shift:
                for k in range(n):
                    m[2 * k + 1, :] = 0
                    m[:, 2 * k + 1] = 0
                    m[2 * k + 1, 2 * k + 1] = 1
                    rhs[2 * k + 1] = 0
            try:
                xv = np.linalg.solve(m, rhs)
            except np.linalg.LinAlgError:
                # degenerate views (e.g. a model whose output is saturated everywhere): the
                # least-squares answer of smallest norm instead of a crash
                xv = np.linalg.lstsq(m, rhs, rcond=None)[0]
        return xv

    x = solve(x, gauge=True)
    x_rel = x.copy()

    def merged_q(xv):
        """Edge-weighted mean aligned inverse distance on the grid. [G*2G]"""
        q = q_of(xv, np.arange(len(ga)))
        w = np.concatenate([s.w for s in samples]) ** 2
        num = np.bincount(gidx, weights=w * q, minlength=len(dirs))
        den = np.bincount(gidx, weights=w, minlength=len(dirs))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)

    def ground_set(q, h):
        below = (lat < -math.radians(ground_min_lat_deg)) & (q > 0) & np.isfinite(q)
        height = np.sin(-lat) / np.where(below, q, 1.0)
        return below, height

    def to_ground(xv):
        """xv scaled so that the mode of the height below the eye (the dominant horizontal plane under
        the camera) lies at eye_height, then refined to the median (equal-area weights) of the heights
        within a quarter of ``ground_tolerance`` of it: the plane itself, not a rug under the camera or a
        step that a wider band takes in. None without enough pixels below the camera."""
        bl, hg = ground_set(merged_q(xv), eye_height)
        if bl.sum() < 30:
            return None
        lh, wts = np.log(hg[bl]), coslat[bl]
        lo, hi = np.percentile(lh, [1, 99])
        hist, edges = np.histogram(lh, bins=64, range=(lo, hi + 1e-9), weights=wts)
        hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
        k = int(np.argmax(hist))
        h_mode = float(np.exp(0.5 * (edges[k] + edges[k + 1])))
        r = hg[bl] / h_mode
        near = np.abs(r - 1.0) < ground_tolerance / 4
        if near.sum() >= 30:
            h_mode *= _weighted_median(r[near], wts[near])
        return xv * (h_mode / eye_height)  # (inverse distances in metres)

    def on_ground(q):
        """(below, height, on): the pixels below the camera, their height below the eye, and those
        within ``ground_tolerance`` of the eye height, for the merged inverse distances ``q``."""
        bl, hg = ground_set(q, eye_height)
        return bl, hg, bl & (np.abs(hg / eye_height - 1.0) < ground_tolerance)

    # 1) the overall scale from the mode of the height below the eye
    ground_found = False
    ground_scale = None
    ground_residual = None
    support = 0
    scaled = to_ground(x) if use_ground else None
    if scaled is not None:
        x = scaled
        # 2) ground rows: absolute equations, re-selected by their plane residual
        for _ in range(3):
            below, _, on = on_ground(merged_q(x))
            support = int(on.sum())
            if support < 30 or support < 0.02 * below.sum():
                break
            rows = np.nonzero(on[gidx])[0]
            target = np.sin(-lat[gidx[rows]]) / eye_height
            # later refits start close to the answer: fewer robust rounds
            rounds = iterations if not ground_found else max(2, iterations // 2)
            # Two solutions; the one that puts more of the panorama on the ground plane is kept:
            # 1. the ground rows as absolute equations and the overall level free: exact where the
            #    views agree up to their scale and shift;
            # 2. the overall level held (the gauge; the ground rows settle the shift), then the scale
            #    read from the ground again. Where the views disagree (a real model's smooth errors),
            #    the overlap equations, weighted by the last round's level, pull every view's scale
            #    towards 0 in (1), and the ground's small weight does not hold it: with a simulated
            #    relative model (±10 % smooth errors per view) on independent Cycles rooms and a
            #    street, the heights came out 4-14x the eye height, the ground was lost and the
            #    rooms' AbsRel was 1-3.
            x_free = solve(x, rows, target, gauge=False, rounds=rounds)
            x_held = to_ground(solve(x, rows, target, gauge=True, rounds=rounds))
            if x_held is None or (
                coslat[on_ground(merged_q(x_free))[2]].sum() >= coslat[on_ground(merged_q(x_held))[2]].sum()
            ):
                x = x_free
            else:
                x = x_held
            ground_found = True
        q = merged_q(x)
        below, height, on = on_ground(q)
        support = int(on.sum())
        ground_found = ground_found and support >= 30
        if support:
            ground_residual = float(np.sqrt(np.average((height[on] / eye_height - 1.0) ** 2, weights=coslat[on])))
        qr = merged_q(x_rel)
        ok = np.isfinite(q) & np.isfinite(qr) & (q > 0) & (qr > 0)
        ground_scale = float(np.median(qr[ok] / q[ok])) if ok.any() else None
    if use_ground and not ground_found:
        # no usable ground: set the median distance instead (reported as such)
        x = x_rel.copy()
        q = merged_q(x)
        ok = np.isfinite(q) & (q > 0)
        if ok.any():
            x = x / (float(np.median(q[ok])) * fallback_median_m)
        ground_scale = None
    if not use_ground:
        # keep the model's own metric scale: the typical view keeps its own scale (the median of the
        # log view scales, each view weighted by the solid angle of its samples). An unweighted mean
        # let a view that sees almost only sky (60 samples), whose scale the overlaps barely hold and
        # which drifted to 1e6 or 1e-3, move every other view: a metric model's meadow came out 9x
        # too far, its exact depth 0.38x too near
        s = x[0::2]
        wv = np.array([float(coslat[sm.idx].sum()) if sm.a.size else 0.0 for sm in samples])
        ok = (s > 0) & (wv > 0)
        x = x / (float(np.exp(_weighted_median(np.log(s[ok]), wv[ok]))) if ok.any() else 1.0)
    qi, qj = q_of(x, ri), q_of(x, rj)
    lvl = np.maximum(0.5 * (np.abs(qi) + np.abs(qj)), 1e-12)
    overlap_res = float(np.median(np.abs(qi - qj) / lvl)) if len(qi) else 0.0
    report = {
        "views": n,
        "overlap_pixels": int(len(ri)),
        "overlap_residual": round(overlap_res, 5),
        "ground_found": bool(ground_found),
        "ground_scale": None if ground_scale is None else round(ground_scale, 5),
        "ground_residual": None if ground_residual is None else round(ground_residual, 5),
        "ground_support": support,
        "scale_from": "ground" if ground_found else ("median distance" if use_ground else "model"),
    }
    # overlap equations per view, relative to the best-connected view
    counts = np.bincount(np.concatenate([vi, vj]), minlength=n).astype(np.float64)
    confidence = np.clip(counts / max(float(counts.max()), 1.0) / 0.25, 0.0, 1.0)
    return Alignment(
        x[0::2].copy(),
        x[1::2].copy(),
        ground_found,
        ground_scale,
        ground_residual,
        support,
        overlap_res,
        report,
        confidence,
    )


def _accumulate(m: np.ndarray, cols: np.ndarray, coef: np.ndarray, w: np.ndarray) -> None:
    """m += sum_k w_k c_k c_k^T over rows with few non-zeros (columns ``cols``, values ``coef``)."""
    nun = m.shape[0]
    k = cols.shape[1]
    for p in range(k):
        for r in range(k):
            m += np.bincount(cols[:, p] * nun + cols[:, r], w * coef[:, p] * coef[:, r], minlength=nun * nun).reshape(
                nun, nun
            )


def merge_views(
    values: np.ndarray,
    valid: np.ndarray,
    cameras: list[Camera],
    alignment: Alignment,
    height: int,
    feather: float = 0.5,
    jump: float = 0.05,
    front_weight: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend the aligned views into one equirect of inverse Euclidean distance.

    Each view is sampled edge-aware (:func:`worldgen.depth.views.sample_view_edges`: bilinear
    within a surface, never across a depth edge). Overlapping views are blended with weights that
    fall smoothly to zero at each view's border, so no seam remains; but at a depth edge two views
    may put a pixel on different sides of it, and their mean would be a surface that does not
    exist (a flying pixel): where any view's cell was cut by an edge, a sample joins the blend only
    if it agrees (within ``jump``, relative) with the front-most sample, the same choice as inside
    one view, and one that does not depend on which view owns the pixel (no seam along view borders).

    Args:
        values, valid, cameras: as for :func:`align_views`.
        alignment: its result.
        height: H of the output panorama (W = 2H).
        feather: each view's weight rises from 0 at its border to 1 at this fraction of its half-size.
        jump: relative tolerance that tells a depth edge from a surface.
        front_weight: at a depth edge inside a view's pixel cell, the weight the nearer side needs
            to win (see :func:`worldgen.depth.views.sample_view_edges`).

    Returns:
        A tuple: **inverse distance** 1/m [H, 2H] float32 (0 where no valid view reaches) and
        **weight** [H, 2H] float32 (the sum of blend weights; 0 = no view).
    """
    w2 = 2 * height
    npx = height * w2
    all_dirs = equirect_directions(height)
    conf = alignment.confidence if alignment.confidence is not None else np.ones(len(cameras))
    # pass 1: every view's samples; per pixel, the front-most sample and whether any view's cell was cut
    parts = []
    front_q = np.full(npx, -np.inf, np.float32)
    any_cut = np.zeros(npx, bool)
    for v, ok, cam, s, t, c in zip(values, valid, cameras, alignment.scale, alignment.shift, conf):
        if c <= 0:
            continue
        rows = view_rows(cam, height)
        pr = project(all_dirs[rows].reshape(-1, 3), cam)
        # sampled as inverse z-depth, which is affine on planes (so exact on them), then divided by
        # the exact ray length at the sample (inverse Euclidean distance is not affine on planes)
        qz = np.where(ok, s * v.astype(np.float32) + t, np.nan).astype(np.float32)
        qv, cut = sample_view_edges(qz, pr.px, pr.py, jump, None, front_weight)
        u = (pr.px - cam.cx) / cam.fx
        w_ = (pr.py - cam.cy) / cam.fy
        qv = qv / np.sqrt(1.0 + u * u + w_ * w_)
        good = np.isfinite(qv)
        e = np.clip(pr.edge[good] / feather, 0, 1)
        w = (e * e * (3 - 2 * e) * c).astype(np.float32)
        flat = pr.index[good] + rows.start * w2
        qv, cut = qv[good], cut[good]
        parts.append((flat, qv, w, cut))
        seen = w > 0
        front_q[flat[seen]] = np.maximum(front_q[flat[seen]], qv[seen])
        any_cut[flat[cut & seen]] = True
    # pass 2: blend; where a depth edge cut a view's cell, only the samples that agree with the front one
    num = np.zeros(npx, np.float64)
    den = np.zeros(npx, np.float64)
    for flat, qv, w, _ in parts:
        ref = front_q[flat]
        agree = np.abs(qv - ref) <= jump * np.maximum(np.abs(ref), np.abs(qv))
        use = agree | ~any_cut[flat]
        num[flat] += np.where(use, w * qv, 0.0)
        den[flat] += np.where(use, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(den > 1e-6, num / np.maximum(den, 1e-12), 0.0)
    return q.reshape(height, w2).astype(np.float32), den.reshape(height, w2).astype(np.float32)


__all__ = ["Alignment", "align_views", "merge_views"]
