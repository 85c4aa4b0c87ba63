"""Ray-cast renderer for procedural scenes: equirect panoramas and perspective views.

Every pixel's ray is intersected exactly with the scene: the terrain by a max-height quadtree
traversal ending in an exact ray/triangle test, water as a plane, and object primitives
analytically (ellipsoids, vertical cylinders and cones, convex polytopes). All work is batched in
numpy: objects are culled by projecting their bounding spheres into the image, which yields
(ray, primitive) candidate pairs that are intersected together.

Anti-aliasing is adaptive: one ray per pixel centre gives depth and class ids (exact, never
blended), then pixels on silhouettes and colour edges get four more colour samples.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..types import SEMANTIC_CLASSES, Camera, linear_to_srgb
from . import scene as S

log = logging.getLogger(__name__)

# Hit kinds.
K_SKY, K_TERRAIN, K_WATER, K_ROOM, K_OBJECT = 0, 1, 2, 3, 4

_ROWS_PER_BAND_PIXELS = 1 << 19  # rays per band; bounds memory at any resolution
_PAIR_CHUNK = 1 << 18  # small enough that near hits cull far pairs in later chunks
_AA_OFFSETS = np.array([[0.125, 0.375], [0.375, -0.125], [-0.125, -0.375], [-0.375, 0.125]])


def _sem(name: str) -> int:
    return SEMANTIC_CLASSES.index(name)


# --------------------------------------------------------------------------------------------
# Frames: how pixels map to rays, and how bounding spheres map to pixel rectangles
# --------------------------------------------------------------------------------------------


@dataclass
class _Frame:
    """An image whose pixels are rays: equirect or pinhole from a centre, or orthographic."""

    kind: str  # "equirect" | "perspective" | "ortho"
    height: int
    width: int
    origin: np.ndarray  # camera centre (equirect/perspective) [3]
    rot: np.ndarray  # cam_to_world rotation [3, 3]
    fx: float = 0.0
    fy: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    texel: float = 1.0  # ortho: metres per pixel
    u0: float = 0.0
    v0: float = 0.0

    def rays(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Origins and unit directions for continuous pixel coordinates. ([n, 3], [n, 3]) float64"""
        if self.kind == "equirect":
            lon = 2 * math.pi * x / self.width - math.pi
            lat = math.pi / 2 - math.pi * y / self.height
            c = np.cos(lat)
            d = np.stack([c * np.sin(lon), np.sin(lat), -c * np.cos(lon)], -1) @ self.rot.T
            return np.broadcast_to(self.origin, d.shape), d
        if self.kind == "perspective":
            xc = (x - self.cx) / self.fx
            yc = -(y - self.cy) / self.fy
            d = np.stack([xc, yc, -np.ones_like(xc)], -1) @ self.rot.T
            d /= np.linalg.norm(d, axis=-1, keepdims=True)
            return np.broadcast_to(self.origin, d.shape), d
        # ortho: rows/cols span the plane through self.origin perpendicular to -rot[:, 2]
        right, up, back = self.rot[:, 0], self.rot[:, 1], self.rot[:, 2]
        u = self.u0 + x * self.texel
        v = self.v0 - y * self.texel
        o = self.origin + u[:, None] * right + v[:, None] * up
        return o, np.broadcast_to(-back, o.shape)

    def rects(
        self, centers: np.ndarray, radii: np.ndarray, box_lo: np.ndarray | None = None, box_hi: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """Pixel rectangles [r0, r1) x [c0, c1) covering each sphere's image (1 px margin).

        With axis-aligned boxes (box_lo/box_hi [P, 3]) an upright equirect frame uses the box's
        exact angular extent, which is much tighter for long buildings.

        Returns (index of sphere, r0, r1, c0, c1), wrapped equirect rectangles split in two.
        """
        h, w = self.height, self.width
        n = len(radii)
        full = np.zeros(n, bool)
        if self.kind == "equirect" and box_lo is not None and np.allclose(self.rot, np.eye(3)):
            return _equirect_box_rects(self, box_lo, box_hi)
        if self.kind == "equirect":
            v = (centers - self.origin) @ self.rot  # into the camera frame
            dist = np.linalg.norm(v, axis=1)
            inside = dist <= radii * 1.0001 + 1e-6
            dist = np.maximum(dist, 1e-9)
            alpha = np.arcsin(np.clip(radii / dist, 0, 1)) + 1.5 * math.pi / h
            lat = np.arcsin(np.clip(v[:, 1] / dist, -1, 1))
            lon = np.arctan2(v[:, 0], -v[:, 2])
            top = lat + alpha
            bot = lat - alpha
            r0 = np.floor((math.pi / 2 - top) / math.pi * h).astype(np.int64)
            r1 = np.ceil((math.pi / 2 - bot) / math.pi * h).astype(np.int64)
            pole = (top >= math.pi / 2) | (bot <= -math.pi / 2) | inside
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.sin(np.minimum(alpha, math.pi / 2)) / np.maximum(np.cos(lat), 1e-12)
                dlon = np.where(s >= 1, math.pi, np.arcsin(np.clip(s, 0, 1)))
            allcol = pole | (dlon >= math.pi * 0.999)
            xc = (lon + math.pi) / (2 * math.pi) * w
            c0 = np.floor(xc - dlon / (2 * math.pi) * w).astype(np.int64) - 1
            c1 = np.ceil(xc + dlon / (2 * math.pi) * w).astype(np.int64) + 1
            r0 = np.where(inside, 0, np.clip(r0 - 1, 0, h))
            r1 = np.where(inside, h, np.clip(r1 + 1, 0, h))
            c0 = np.where(allcol, 0, c0)
            c1 = np.where(allcol, w, c1)
            idx = np.arange(n)
            # Split rectangles crossing the seam.
            lo_wrap = c0 < 0
            hi_wrap = c1 > w
            parts = [(idx, r0, r1, np.clip(c0, 0, w), np.clip(c1, 0, w))]
            parts.append((idx[lo_wrap], r0[lo_wrap], r1[lo_wrap], c0[lo_wrap] + w, np.full(lo_wrap.sum(), w)))
            parts.append((idx[hi_wrap], r0[hi_wrap], r1[hi_wrap], np.zeros(hi_wrap.sum(), np.int64), c1[hi_wrap] - w))
            out = [np.concatenate(a) for a in zip(*parts)]
            return tuple(out)
        if self.kind == "perspective":
            v = (centers - self.origin) @ self.rot  # camera frame, looking along -Z
            x, y, z = v[:, 0], v[:, 1], -v[:, 2]
            dist = np.linalg.norm(v, axis=1)
            behind = z < -radii
            straddle = (z <= radii * 1.0001 + 1e-6) | (dist <= radii * 1.0001)

            def extent(a: np.ndarray, f: float, c: float, size: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
                ang = np.arctan2(a, z)
                beta = np.arcsin(np.clip(radii / np.maximum(np.hypot(a, z), 1e-12), 0, 1))
                lo_a, hi_a = ang - beta, ang + beta
                big = 0.5 * math.pi - 1e-6
                tlo = np.where(lo_a <= -big, -1e9, np.tan(np.clip(lo_a, -big, big)))
                thi = np.where(hi_a >= big, 1e9, np.tan(np.clip(hi_a, -big, big)))
                p_lo = c + sign * f * (tlo if sign > 0 else thi)
                p_hi = c + sign * f * (thi if sign > 0 else tlo)
                return np.floor(np.clip(p_lo, -1, size + 1)).astype(np.int64) - 1, np.ceil(
                    np.clip(p_hi, -1, size + 1)
                ).astype(np.int64) + 1

            c0, c1 = extent(x, self.fx, self.cx, w, 1.0)
            r0, r1 = extent(y, self.fy, self.cy, h, -1.0)
            full = straddle & ~behind
            c0 = np.where(full, 0, c0)
            c1 = np.where(full, w, c1)
            r0 = np.where(full, 0, r0)
            r1 = np.where(full, h, r1)
            keep = ~behind
            idx = np.arange(n)[keep]
            return (
                idx,
                np.clip(r0[keep], 0, h),
                np.clip(r1[keep], 0, h),
                np.clip(c0[keep], 0, w),
                np.clip(c1[keep], 0, w),
            )
        if box_lo is not None:
            # Orthographic: the box corners' projections bound the image exactly.
            corners = np.stack([np.where(np.array([i & 1, i & 2, i & 4]) > 0, box_hi, box_lo) for i in range(8)], 1)
            rel = corners - self.origin
            u = rel @ self.rot[:, 0]
            v = rel @ self.rot[:, 1]
            x0 = (u.min(1) - self.u0) / self.texel - 1
            x1 = (u.max(1) - self.u0) / self.texel + 1
            y0 = (self.v0 - v.max(1)) / self.texel - 1
            y1 = (self.v0 - v.min(1)) / self.texel + 1
            return (
                np.arange(n),
                np.clip(np.floor(y0), 0, h).astype(np.int64),
                np.clip(np.ceil(y1), 0, h).astype(np.int64),
                np.clip(np.floor(x0), 0, w).astype(np.int64),
                np.clip(np.ceil(x1), 0, w).astype(np.int64),
            )
        rel = centers - self.origin
        u = rel @ self.rot[:, 0]
        v = rel @ self.rot[:, 1]
        xc = (u - self.u0) / self.texel
        yc = (self.v0 - v) / self.texel
        rr = radii / self.texel + 1
        return (
            np.arange(n),
            np.clip(np.floor(yc - rr), 0, h).astype(np.int64),
            np.clip(np.ceil(yc + rr), 0, h).astype(np.int64),
            np.clip(np.floor(xc - rr), 0, w).astype(np.int64),
            np.clip(np.ceil(xc + rr), 0, w).astype(np.int64),
        )


# --------------------------------------------------------------------------------------------
# Intersections
# --------------------------------------------------------------------------------------------


def _equirect_box_rects(frame: _Frame, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    h, w = frame.height, frame.width
    n = len(lo)
    o = frame.origin
    lo = lo - o
    hi = hi - o
    # Horizontal distance from the camera to the footprint rectangle: nearest and farthest.
    dxn = np.maximum(np.maximum(lo[:, 0], -hi[:, 0]), 0)
    dzn = np.maximum(np.maximum(lo[:, 2], -hi[:, 2]), 0)
    dmin = np.hypot(dxn, dzn)
    dmax = np.hypot(np.maximum(np.abs(lo[:, 0]), np.abs(hi[:, 0])), np.maximum(np.abs(lo[:, 2]), np.abs(hi[:, 2])))
    over = dmin <= 1e-9  # the camera's vertical axis passes through the footprint
    top, bot = hi[:, 1], lo[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lat_hi = np.where(top > 0, np.arctan2(top, np.where(over, 0.0, dmin)), np.arctan2(top, dmax))
        lat_lo = np.where(bot > 0, np.arctan2(bot, dmax), np.arctan2(bot, np.where(over, 0.0, dmin)))
    margin = 1.5 * math.pi / h
    r0 = np.clip(np.floor((math.pi / 2 - lat_hi - margin) / math.pi * h), 0, h).astype(np.int64)
    r1 = np.clip(np.ceil((math.pi / 2 - lat_lo + margin) / math.pi * h), 0, h).astype(np.int64)
    # Longitude span of the footprint corners, unwrapped around the first corner.
    cx = np.stack([lo[:, 0], hi[:, 0], lo[:, 0], hi[:, 0]], 1)
    cz = np.stack([lo[:, 2], lo[:, 2], hi[:, 2], hi[:, 2]], 1)
    lon = np.arctan2(cx, -cz)
    ref = lon[:, :1]
    rel = np.mod(lon - ref + math.pi, 2 * math.pi) - math.pi
    lon0 = ref[:, 0] + rel.min(1) - margin
    lon1 = ref[:, 0] + rel.max(1) + margin
    allcol = over | (lat_hi >= math.pi / 2 - margin) | (lat_lo <= -math.pi / 2 + margin) | (lon1 - lon0 >= 2 * math.pi)
    c0 = np.floor((lon0 + math.pi) / (2 * math.pi) * w).astype(np.int64)
    c1 = np.ceil((lon1 + math.pi) / (2 * math.pi) * w).astype(np.int64)
    c0 = np.where(allcol, 0, c0)
    c1 = np.where(allcol, w, c1)
    # Bring c0 into [0, w) and split rectangles crossing the seam.
    shift = np.floor_divide(c0, w) * w
    c0, c1 = c0 - shift, c1 - shift
    idx = np.arange(n)
    wrap = c1 > w
    return tuple(
        np.concatenate(a)
        for a in zip(
            (idx, r0, r1, c0, np.minimum(c1, w)),
            (idx[wrap], r0[wrap], r1[wrap], np.zeros(wrap.sum(), np.int64), c1[wrap] - w),
        )
    )


def _slab(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of rays through an axis-aligned box (tn > tf: miss). ([n], [n])"""
    # Zero direction components become tiny ones of either sign: the slab bounds stay finite
    # (never nan), which is all the comparisons below need.
    dd = np.where(d == 0, 1e-30, d)
    inv = 1.0 / dd
    t1 = (lo - o) * inv
    t2 = (hi - o) * inv
    tn = np.minimum(t1, t2).max(axis=-1)
    tf = np.maximum(t1, t2).min(axis=-1)
    return tn, tf


def _trace_terrain(hf: S.Heightfield, o: np.ndarray, d: np.ndarray, tmin: np.ndarray, tmax: np.ndarray) -> np.ndarray:
    """Exact first intersection with the triangulated heightfield.

    Args:
        o: ray origins, metres. [n, 3] float64
        d: unit directions. [n, 3] float64
        tmin, tmax: the segment searched, metres. [n] float64

    Returns:
        Hit distance, +inf where the segment misses. [n] float64
    """
    n = len(d)
    out = np.full(n, np.inf)
    if n == 0:
        return out
    L, cell, N = hf.half, hf.cell, hf.n
    lo = np.array([-L, hf.maxmip[-1].min() - 1e9, -L])
    lo[1] = hf.heights.min() - 1.0
    hi = np.array([L, hf.maxmip[-1].max() + 0.01, L])
    o = np.broadcast_to(o, d.shape)
    t0, t1 = _slab(o, d, lo, hi)
    t0 = np.maximum(t0, tmin)
    t1 = np.minimum(t1, tmax)
    act = np.nonzero(t0 < t1)[0]
    if act.size == 0:
        return out
    levels = len(hf.maxmip)
    offs = np.cumsum([0] + [m.size for m in hf.maxmip])
    widths = np.array([m.shape[0] for m in hf.maxmip], np.int64)
    flat = np.concatenate([m.ravel() for m in hf.maxmip])
    H = hf.heights
    Hflat = H.ravel()
    W1 = N + 1
    idx = act
    t = t0[act]
    te = t1[act]
    oy, dy = o[act, 1], d[act, 1]
    uo = (o[act, 0] + L) / cell
    vo = (o[act, 2] + L) / cell
    ud = d[act, 0] / cell
    vd = d[act, 2] / cell
    # Zero components become tiny positive ones: block exits stay finite and ahead of t.
    ud = np.where(ud == 0, 1e-30, ud)
    vd = np.where(vd == 0, 1e-30, vd)
    pu = (ud > 0).astype(np.int64)
    pv = (vd > 0).astype(np.int64)
    bu = np.where(ud > 0, 1e-7, -1e-7)
    bv = np.where(vd > 0, 1e-7, -1e-7)
    iu = 1.0 / ud
    iv = 1.0 / vd
    lvl = np.full(act.size, min(levels - 1, 5), np.int64)
    alive = np.ones(act.size, bool)
    top = N - 1e-9
    for it in range(20000):
        if idx.size == 0:
            break
        u = np.clip(uo + t * ud + bu, 0, top)
        v = np.clip(vo + t * vd + bv, 0, top)
        bi = np.right_shift(u.astype(np.int64), lvl)
        bj = np.right_shift(v.astype(np.int64), lvl)
        tx = (np.left_shift(bi + pu, lvl) - uo) * iu
        tz = (np.left_shift(bj + pv, lvl) - vo) * iv
        tb = np.minimum(np.minimum(tx, tz), te)
        ymin = oy + dy * np.where(dy < 0, tb, t)
        M = flat[offs[lvl] + bi * widths[lvl] + bj]
        above = ymin > M
        was0 = lvl == 0
        leaf = np.nonzero(~above & was0 & alive)[0]
        # Free flight across this block: advance and try a coarser level; else refine.
        t = np.where(above, tb, t)
        lvl = np.where(above, np.minimum(lvl + 1, levels - 1), np.where(was0, 0, lvl - 1))
        if leaf.size:
            ci, cj = bi[leaf], bj[leaf]
            base = ci * W1 + cj
            h00, h10, h01, h11 = Hflat[base], Hflat[base + W1], Hflat[base + 1], Hflat[base + W1 + 1]
            loy, ldy = oy[leaf], dy[leaf]
            a0 = uo[leaf] - ci
            b0 = vo[leaf] - cj
            a1 = ud[leaf]
            b1 = vd[leaf]
            ts, tf = t[leaf], tb[leaf]
            best = np.full(leaf.size, np.inf)
            # Triangle 1 (a + b <= 1): h = h00 + a (h10 - h00) + b (h01 - h00).
            e1, e2 = h10 - h00, h01 - h00
            f0 = loy - h00 - e1 * a0 - e2 * b0
            f1 = ldy - e1 * a1 - e2 * b1
            # Triangle 2 (a + b >= 1): h = h11 + (1 - a) (h01 - h11) + (1 - b) (h10 - h11).
            g1, g2 = h01 - h11, h10 - h11
            k0 = loy - h11 - g1 * (1 - a0) - g2 * (1 - b0)
            k1 = ldy + g1 * a1 + g2 * b1
            for c0, c1, lower in ((f0, f1, True), (k0, k1, False)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    th = np.where(c1 != 0, -c0 / c1, np.inf)
                # A segment that starts under the surface hits at its start.
                fs = c0 + c1 * ts
                th = np.where(fs <= 0, ts, th)
                ab = (a0 + a1 * th) + (b0 + b1 * th)
                side = (ab <= 1 + 1e-7) if lower else (ab >= 1 - 1e-7)
                ok = (th >= ts - 1e-9) & (th <= tf + 1e-9) & side & np.isfinite(th)
                best = np.where(ok & (th < best), th, best)
            hit = np.isfinite(best)
            gl = leaf[hit]
            out[idx[gl]] = best[hit]
            alive[gl] = False
            miss = leaf[~hit]
            t[miss] = tb[miss]
            lvl[miss] = 1 if levels > 1 else 0
        alive &= t < te - 1e-9
        if it % 4 == 3 or not alive.any():
            keep = alive
            idx, t, te, lvl = idx[keep], t[keep], te[keep], lvl[keep]
            oy, dy, uo, vo, ud, vd = oy[keep], dy[keep], uo[keep], vo[keep], ud[keep], vd[keep]
            pu, pv, bu, bv, iu, iv = pu[keep], pv[keep], bu[keep], bv[keep], iu[keep], iv[keep]
            alive = np.ones(idx.size, bool)
    return out


def _intersect(p: S.Primitives, q: np.ndarray, o: np.ndarray, d: np.ndarray, tmin: np.ndarray) -> np.ndarray:
    """Nearest hit beyond tmin of ray pairs with primitives q. Returns t [M] float64 (+inf = miss)."""
    m = len(q)
    t = np.full(m, np.inf)
    kind = p.kind[q]
    for k in (S.ELLIPSOID, S.CYLINDER, S.CONE, S.POLYTOPE):
        sel = np.nonzero(kind == k)[0]
        if sel.size == 0:
            continue
        qq = q[sel]
        oo, dd, tm = o[sel], d[sel], tmin[sel]
        c = p.center[qq]
        if k == S.ELLIPSOID:
            r = p.size[qq]
            lo = (oo - c) / r
            ld = dd / r
            a = (ld * ld).sum(1)
            b = (lo * ld).sum(1)
            cc = (lo * lo).sum(1) - 1
            disc = b * b - a * cc
            sq = np.sqrt(np.maximum(disc, 0))
            t1 = (-b - sq) / a
            t2 = (-b + sq) / a
            res = np.where(t1 > tm, t1, np.where(t2 > tm, t2, np.inf))
            res = np.where(disc >= 0, res, np.inf)
        elif k == S.POLYTOPE:
            pl = p.planes[qq]  # [s, 8, 4]
            nrm = pl[..., :3]
            den = np.einsum("skj,sj->sk", nrm, dd)
            num = pl[..., 3] - np.einsum("skj,sj->sk", nrm, oo)
            with np.errstate(divide="ignore", invalid="ignore"):
                tt = num / den
            enter = np.where(den < 0, tt, -np.inf).max(1)
            leave = np.where(den > 0, tt, np.inf).min(1)
            para_out = ((den == 0) & (num < 0)).any(1)
            res = np.where((enter <= leave) & ~para_out & (enter > tm), enter, np.inf)
        else:
            r, hgt = p.size[qq, 0], p.size[qq, 1]
            rel = oo - c
            res = np.full(sel.size, np.inf)
            if k == S.CYLINDER:
                a = dd[:, 0] ** 2 + dd[:, 2] ** 2
                b = rel[:, 0] * dd[:, 0] + rel[:, 2] * dd[:, 2]
                cc = rel[:, 0] ** 2 + rel[:, 2] ** 2 - r * r
                disc = b * b - a * cc
                sq = np.sqrt(np.maximum(disc, 0))
                with np.errstate(divide="ignore", invalid="ignore"):
                    for tc in ((-b - sq) / a, (-b + sq) / a):
                        y = rel[:, 1] + tc * dd[:, 1]
                        ok = (disc >= 0) & (a > 1e-12) & (tc > tm) & (y >= 0) & (y <= hgt)
                        res = np.where(ok & (tc < res), tc, res)
                caps = ((0.0, None), (1.0, None))
            else:
                apex = rel.copy()
                apex[:, 1] -= hgt
                k2 = (r / hgt) ** 2
                a = dd[:, 0] ** 2 + dd[:, 2] ** 2 - k2 * dd[:, 1] ** 2
                b = apex[:, 0] * dd[:, 0] + apex[:, 2] * dd[:, 2] - k2 * apex[:, 1] * dd[:, 1]
                cc = apex[:, 0] ** 2 + apex[:, 2] ** 2 - k2 * apex[:, 1] ** 2
                disc = b * b - a * cc
                sq = np.sqrt(np.maximum(disc, 0))
                with np.errstate(divide="ignore", invalid="ignore"):
                    for tc in ((-b - sq) / a, (-b + sq) / a):
                        y = apex[:, 1] + tc * dd[:, 1]
                        ok = (disc >= 0) & (np.abs(a) > 1e-12) & (tc > tm) & (y <= 0) & (y >= -hgt)
                        res = np.where(ok & (tc < res), tc, res)
                caps = ((0.0, None),)
            with np.errstate(divide="ignore", invalid="ignore"):
                for frac, _ in caps:
                    tc = (frac * hgt - rel[:, 1]) / dd[:, 1]
                    px = rel[:, 0] + tc * dd[:, 0]
                    pz = rel[:, 2] + tc * dd[:, 2]
                    ok = (tc > tm) & (px * px + pz * pz <= r * r) & np.isfinite(tc)
                    res = np.where(ok & (tc < res), tc, res)
        t[sel] = res
    return t


def _prim_normals(p: S.Primitives, q: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Outward unit normals at surface points pos of primitives q. [n, 3] float64"""
    nrm = np.zeros((len(q), 3))
    kind = p.kind[q]
    for k in (S.ELLIPSOID, S.CYLINDER, S.CONE, S.POLYTOPE):
        sel = np.nonzero(kind == k)[0]
        if sel.size == 0:
            continue
        qq = q[sel]
        rel = pos[sel] - p.center[qq]
        if k == S.ELLIPSOID:
            n = rel / p.size[qq] ** 2
        elif k == S.POLYTOPE:
            pl = p.planes[qq]
            # Padding planes (0, 0, 0, 1) give -1 everywhere, while the face the point lies on
            # gives ~0 and the others less, so the argmax picks the face.
            dist = np.einsum("skj,sj->sk", pl[..., :3], pos[sel]) - pl[..., 3]
            face = dist.argmax(1)
            n = pl[np.arange(sel.size), face, :3]
        else:
            r, hgt = p.size[qq, 0], p.size[qq, 1]
            rho = np.hypot(rel[:, 0], rel[:, 2])
            y = rel[:, 1]
            if k == S.CYLINDER:
                side = np.stack([rel[:, 0], np.zeros_like(y), rel[:, 2]], 1) / np.maximum(rho, 1e-9)[:, None]
                cap = np.where(y > hgt * 0.5, 1.0, -1.0)
                on_cap = (np.abs(y - hgt) < 1e-4 * (1 + hgt)) | (np.abs(y) < 1e-4 * (1 + hgt))
                on_cap &= rho < r * (1 - 1e-4)
                n = np.where(on_cap[:, None], np.stack([np.zeros_like(y), cap, np.zeros_like(y)], 1), side)
            else:
                slope = r / hgt
                side = np.stack(
                    [rel[:, 0] / np.maximum(rho, 1e-9), slope * np.ones_like(y), rel[:, 2] / np.maximum(rho, 1e-9)], 1
                )
                on_base = np.abs(y) < 1e-4 * (1 + hgt)
                n = np.where(on_base[:, None], np.array([0.0, -1.0, 0.0]), side)
        nrm[sel] = n
    return nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)


def _room_hit(room: S.Room, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit distance from inside the room box and the face (0..5: -x,+x,-y,+y,-z,+z). ([n], [n])"""
    o = np.broadcast_to(o, d.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(d > 0, (room.hi - o) / d, np.where(d < 0, (room.lo - o) / d, np.inf))
    axis = tt.argmin(1)
    t = tt[np.arange(len(d)), axis]
    face = axis * 2 + (d[np.arange(len(d)), axis] > 0)
    return t, face


# --------------------------------------------------------------------------------------------
# Tracing a batch of rays
# --------------------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Terrain profiles under the columns of an upright equirect frame (see _column_profiles).

    s, h: horizontal distance from the centre and terrain height at each breakpoint, metres;
        padded with the last point. [W, K] float64
    key: arctan of the running maximum of (h - y0) / s, plus 4 * column, flattened: ascending,
        so one binary search finds a ray's first breakpoint at or above it. [W * K] float64
    """

    s: np.ndarray
    h: np.ndarray
    key: np.ndarray


def _column_profiles(hf: S.Heightfield, frame: _Frame) -> _Columns | None:
    """The terrain profile along every pixel column's azimuth of an upright equirect frame.

    All rays of a column share one vertical half-plane, and along it the triangulated terrain is
    piecewise linear with breakpoints where the path crosses a grid line (u or v integer) or a
    cell diagonal (u + v integer). A ray at elevation angle a first meets the terrain in the
    segment ending at the first breakpoint whose slope (h - y0) / s reaches tan(a), and meets it
    exactly where the linear profile crosses the ray there: the same triangles, found without
    stepping through the quadtree ray by ray. Returns None when the centre is off the terrain.
    """
    w = frame.width
    L, cell, N = hf.half, hf.cell, hf.n
    ox, oy, oz = (float(v) for v in frame.origin)
    u0, v0 = (ox + L) / cell, (oz + L) / cell
    if not (0 < u0 < N and 0 < v0 < N):
        return None
    lon = 2 * math.pi * (np.arange(w) + 0.5) / w - math.pi
    sx, sz = np.sin(lon), -np.cos(lon)
    sx = np.where(sx == 0, 1e-30, sx)
    sz = np.where(sz == 0, 1e-30, sz)
    # Horizontal distance to the square's edge along each column.
    s_end = np.minimum(np.where(sx > 0, (L - ox) / sx, (-L - ox) / sx), np.where(sz > 0, (L - oz) / sz, (-L - oz) / sz))
    ju = int(math.ceil(max(u0, N - u0))) + 1
    jv = int(math.ceil(max(v0, N - v0))) + 1
    jw = int(math.ceil(max(u0 + v0, 2 * N - u0 - v0))) + 1
    K = ju + jv + jw + 2
    s_all = np.empty((w, K))
    h_all = np.empty((w, K))
    key = np.empty((w, K))
    step = max(1, (1 << 19) // K)

    def chunk(c0: int) -> None:
        c = slice(c0, min(w, c0 + step))
        du, dv, se = sx[c, None] / cell, sz[c, None] / cell, s_end[c, None]
        # Grid lines ahead of the centre along each axis and along the diagonals, as distances.
        ku = np.where(du > 0, math.floor(u0) + 1 + np.arange(ju), math.ceil(u0) - 1 - np.arange(ju))
        kv = np.where(dv > 0, math.floor(v0) + 1 + np.arange(jv), math.ceil(v0) - 1 - np.arange(jv))
        dw = du + dv
        kw = np.where(dw > 0, math.floor(u0 + v0) + 1 + np.arange(jw), math.ceil(u0 + v0) - 1 - np.arange(jw))
        with np.errstate(divide="ignore", invalid="ignore"):
            sw = (kw - (u0 + v0)) / dw
        sw = np.where(np.isfinite(sw), sw, np.inf)
        sc = np.concatenate([np.zeros_like(se), (ku - u0) / du, (kv - v0) / dv, sw, se], axis=1)
        sc = np.where((sc >= 0) & (sc <= se), sc, se)
        sc.sort(axis=1)
        # Past the last real breakpoint every entry is the edge point: evaluate up to it only.
        kmax = int((sc < se).sum(1).max()) + 1
        sv = sc[:, :kmax]
        hc = hf.height(ox + sv * sx[c, None], oz + sv * sz[c, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(sv > 0, (hc - oy) / sv, -np.inf)
        run = np.maximum.accumulate(m, axis=1)
        s_all[c] = sc
        h_all[c, :kmax] = hc
        h_all[c, kmax:] = hc[:, -1:]
        kc = np.arctan(run) + 4.0 * np.arange(c.start, c.stop)[:, None]
        key[c, :kmax] = kc
        key[c, kmax:] = kc[:, -1:]

    _parallel(chunk, range(0, w, step))
    return _Columns(s_all, h_all, key.ravel())


def _column_hits(cols: _Columns, y: np.ndarray, c: np.ndarray, frame: _Frame) -> np.ndarray:
    """Terrain hit distances of pixel-centre rays (rows y + 0.5 given as y, columns c). [n] float64"""
    K = cols.s.shape[1]
    lat = math.pi / 2 - math.pi * y / frame.height
    idx = np.searchsorted(cols.key, lat + 4.0 * c, "left")
    hit = idx < (c + 1) * K
    out = np.full(len(c), np.inf)
    if not hit.any():
        return out
    cc, k, la = c[hit], idx[hit] - c[hit] * K, lat[hit]
    k = np.maximum(k, 1)
    sa, sb = cols.s[cc, k - 1], cols.s[cc, k]
    ha, hb = cols.h[cc, k - 1], cols.h[cc, k]
    oy = float(frame.origin[1])
    tn, cs = np.tan(la), np.cos(la)
    ga = ha - oy - sa * tn  # below the ray (< 0) at the segment's start, at or above it at its end
    gb = hb - oy - sb * tn
    den = ga - gb
    f = np.clip(np.where(den != 0, ga / np.where(den != 0, den, 1.0), 0.0), 0.0, 1.0)
    out[hit] = (sa + (sb - sa) * f) / cs
    return out


@dataclass
class _Hits:
    t: np.ndarray  # [n] float64, inf = sky
    kind: np.ndarray  # [n] int8
    prim: np.ndarray  # [n] int32 (object index, or room face)


def _pairs(frame: _Frame, rect_idx, r0, r1, c0, c1, pix_sorted: np.ndarray):
    """Yield (ray index [M], primitive [M]) candidate pairs in chunks, in rectangle order.

    pix_sorted: parent pixel (row * W + col) of every ray, ascending. [n] int64

    Each rectangle row [row*W + c0, row*W + c1) is a contiguous run of ``pix_sorted``, found by
    two binary searches, so the work is proportional to the pairs produced (plus one search per
    rectangle row), whether the rays cover the image densely (bands) or sparsely (anti-aliasing
    samples on edges, water reflections).
    """
    w = frame.width
    if pix_sorted.size == 0 or len(rect_idx) == 0:
        return
    row_lo, row_hi = int(pix_sorted[0]) // w, int(pix_sorted[-1]) // w + 1
    r0 = np.maximum(r0, row_lo)
    r1 = np.minimum(r1, row_hi)
    hgt = (r1 - r0).clip(0) * (c1 > c0)
    nz = hgt > 0
    rect_idx, r0, c0, c1, hgt = rect_idx[nz], r0[nz], c0[nz], c1[nz], hgt[nz]
    if hgt.size == 0:
        return
    rid = np.repeat(np.arange(hgt.size), hgt)
    row = r0[rid] + (np.arange(rid.size) - np.repeat(np.cumsum(hgt) - hgt, hgt))
    first = np.searchsorted(pix_sorted, row * w + c0[rid], "left")
    cnt = np.searchsorted(pix_sorted, row * w + c1[rid], "left") - first
    has = cnt > 0
    rid, first, cnt = rid[has], first[has], cnt[has]
    prim = rect_idx[rid]
    cum = np.cumsum(cnt)
    start = 0
    while start < cnt.size:
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, "right")), start + 1)
        c = cnt[start:stop]
        rep = np.repeat(np.arange(start, stop), c)
        k = np.arange(rep.size) - np.repeat(np.cumsum(c) - c, c)
        yield first[rep] + k, prim[rep]
        start = stop


def _trace(
    scene: S.Scene,
    frame: _Frame,
    o: np.ndarray,
    d: np.ndarray,
    pix: np.ndarray,
    tmin: np.ndarray | None = None,
    mirror: float | None = None,
    objects: bool = True,
    terrain: bool = True,
    terrain_t: np.ndarray | None = None,
) -> _Hits:
    """Nearest hits of rays whose parent pixels are ``pix`` (ascending) in ``frame``.

    mirror: water level when the rays are reflections off the water (objects are culled with
        their mirror images, which is exact for a central-projection frame).
    terrain_t: the rays' terrain hit distances when already known (+inf = miss). [n] float64
    """
    n = len(d)
    o = np.broadcast_to(o, d.shape)
    tmin = np.full(n, 1e-4) if tmin is None else tmin
    best = np.full(n, np.inf)
    kind = np.zeros(n, np.int8)
    prim = np.full(n, -1, np.int32)
    if scene.terrain is not None and terrain:
        tt = terrain_t if terrain_t is not None else _trace_terrain(scene.terrain, o, d, tmin, np.full(n, np.inf))
        hit = (tt < best) & (tt > tmin)
        best[hit] = tt[hit]
        kind[hit] = K_TERRAIN
    if scene.water_level is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            tw = (scene.water_level - o[:, 1]) / d[:, 1]
        hit = (d[:, 1] < 0) & (tw > tmin) & (tw < best)
        best[hit] = tw[hit]
        kind[hit] = K_WATER
    if scene.room is not None:
        tr, face = _room_hit(scene.room, o, d)
        hit = (tr > tmin) & (tr < best)
        best[hit] = tr[hit]
        kind[hit] = K_ROOM
        prim[hit] = face[hit]
    p = scene.prims
    if objects and len(p):
        centers = p.bound_center
        blo, bhi = p.box_lo, p.box_hi
        if mirror is not None:
            centers = centers.copy()
            centers[:, 1] = 2 * mirror - centers[:, 1]
            blo, bhi = blo.copy(), bhi.copy()
            blo[:, 1], bhi[:, 1] = 2 * mirror - p.box_hi[:, 1], 2 * mirror - p.box_lo[:, 1]
        rects = frame.rects(centers, p.bound_radius, blo, bhi)
        # Near primitives first, so the bounding-sphere test below rejects what they hide.
        near = np.linalg.norm(centers[rects[0]] - frame.origin, axis=1) - p.bound_radius[rects[0]]
        order = np.argsort(near, kind="stable")
        rects = tuple(a[order] for a in rects)
        inv = 1.0 / np.where(d == 0, 1e-30, d)
        for ray, q in _pairs(frame, *rects, pix):
            # Ray against the primitive's box: rejects misses and anything behind a nearer hit
            # (boxes hug thin trees and long buildings far better than bounding spheres).
            oo = o[ray]
            iv = inv[ray]
            lo = p.box_lo[q]
            hi = p.box_hi[q]
            tn = np.full(ray.size, -np.inf)
            tf = np.full(ray.size, np.inf)
            for ax in range(3):  # per axis on 1-D arrays: reductions over a length-3 axis are slow
                a = (lo[:, ax] - oo[:, ax]) * iv[:, ax]
                b = (hi[:, ax] - oo[:, ax]) * iv[:, ax]
                np.maximum(tn, np.minimum(a, b), out=tn)
                np.minimum(tf, np.maximum(a, b), out=tf)
            ok = (tn <= tf) & (tn < best[ray]) & (tf > tmin[ray])
            ray, q, oo = ray[ok], q[ok], oo[ok]
            if ray.size == 0:
                continue
            dd = d[ray]
            t = _intersect(p, q, oo, dd, tmin[ray])
            ok = t < best[ray]
            ray, q, t = ray[ok], q[ok], t[ok]
            if ray.size == 0:
                continue
            np.minimum.at(best, ray, t)
            win = t == best[ray]
            kind[ray[win]] = K_OBJECT
            prim[ray[win]] = q[win]
    return _Hits(best, kind, prim)


# --------------------------------------------------------------------------------------------
# Shading
# --------------------------------------------------------------------------------------------


def _tex(scene: S.Scene, u: np.ndarray, v: np.ndarray, ch: int = 0) -> np.ndarray:
    """Tileable noise (std ~1) at continuous texel coordinates, bilinear. [n] float32"""
    t = scene.noise[..., ch]
    n = t.shape[0]
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    i = np.floor(u)
    j = np.floor(v)
    fu = (u - i).astype(np.float32)
    fv = (v - j).astype(np.float32)
    i = i.astype(np.int64) % n
    j = j.astype(np.int64) % n
    i1 = (i + 1) % n
    j1 = (j + 1) % n
    return (t[i, j] * (1 - fu) + t[i1, j] * fu) * (1 - fv) + (t[i, j1] * (1 - fu) + t[i1, j1] * fu) * fv


def _hash(*ints: np.ndarray) -> np.ndarray:
    """Deterministic hash of integer arrays to [0, 1). [n] float64"""
    h = np.zeros(np.broadcast(*ints).shape, np.uint64)
    for k, a in enumerate(ints):
        h ^= (np.asarray(a).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15 + k)) * np.uint64(
            0xBF58476D1CE4E5B9
        )
        h ^= h >> np.uint64(29)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _sky(scene: S.Scene, d: np.ndarray, origin_y: float = 0.0) -> np.ndarray:
    """Sky radiance along directions d. [n, 3] float32 linear"""
    L = scene.light
    y = d[:, 1]
    up = np.sqrt(np.clip(y, 0, 1))[:, None]
    col = L.horizon[None] * (1 - up) + L.zenith[None] * up
    below = np.clip(-y, 0, 1)[:, None]
    col = col * (1 - 0.4 * np.sqrt(below))
    cosang = d @ L.sun_dir
    night = L.night
    glow = np.exp((cosang - 1) * 6.0) * 0.35 + np.exp((cosang - 1) * 60.0) * 0.6
    hb = np.exp(-np.abs(y) * 10.0)[:, None]
    col = col + L.glow[None] * (glow[:, None] * (0.4 + 0.6 * hb))
    if night:
        # Stars on a fixed grid of directions, and the moon.
        k = 500.0
        cell = np.floor(d * k)
        hsh = _hash(cell[:, 0], cell[:, 1], cell[:, 2])
        star = (hsh > 0.9965) & (y > 0.02)
        bright = (_hash(cell[:, 2], cell[:, 0]) ** 3) * 1.5 + 0.2
        col = col + (star * bright * np.clip(y * 5, 0, 1))[:, None] * np.array([0.8, 0.85, 1.0])
        moon = cosang > math.cos(math.radians(1.2))
        col = np.where(moon[:, None], np.array([0.9, 0.9, 0.82]) * 1.5, col)
    elif L.sun_color.max() > 0:
        sun = cosang > math.cos(math.radians(0.8))
        col = np.where(sun[:, None], L.sun_color[None] * 6.0 + 2.0, col)
    if L.clouds > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = 1500.0 / np.maximum(y, 1e-3)
        cu = d[:, 0] * s / 90.0 + 17.0
        cv = d[:, 2] * s / 90.0 + 5.0
        nse = _tex(scene, cu, cv, 1) * 0.7 + _tex(scene, cu * 3.1, cv * 3.1, 0) * 0.35
        cover = L.clouds
        thr = 1.2 - 2.4 * cover
        dens = np.clip((nse - thr) / 0.9, 0, 1) * np.clip((y - 0.01) * 8, 0, 1)
        dens = dens * (y > 0)
        lit = 0.5 + 0.5 * np.clip(cosang, 0, 1)
        base = L.horizon * 0.9 + 0.25 * L.sun_color * max(L.sun_dir[1], 0.05)
        cc = base[None] * (0.7 + 0.45 * lit[:, None]) + L.glow[None] * glow[:, None] * 0.8
        cc = cc * (1 - 0.35 * np.clip(nse - thr - 0.6, 0, 1))[:, None]
        col = col * (1 - dens[:, None]) + cc * dens[:, None]
    return col.astype(np.float32)


def _terrain_albedo(
    scene: S.Scene, pos: np.ndarray, nrm: np.ndarray, dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ground colour (linear) and semantic id per terrain hit. ([n, 3] float32, [n] uint8)"""
    spec = scene.spec
    x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
    ny = nrm[:, 1]
    g = y + scene.eye_height  # height above the camera's ground
    n1 = _tex(scene, x / 7.0, z / 7.0, 0)
    n2 = _tex(scene, x / 1.3, z / 1.3, 1)
    n3 = _tex(scene, x / 40.0, z / 40.0, 0)
    # Fine detail fades with distance so it does not alias.
    fine = np.clip(1.0 - dist / 150.0, 0, 1).astype(np.float32)
    var = 1.0 + 0.12 * n1 + 0.12 * n2 * fine + 0.08 * n3
    sem = np.full(len(x), _sem("terrain"), np.uint8)

    def c(r, gg, b):
        return np.array(S._srgb(r, gg, b), np.float32)

    setting = scene.ground_style
    autumn = spec.season == "autumn"
    grass = c(84, 112, 46) if not autumn else c(124, 118, 58)
    grass2 = c(60, 88, 36) if not autumn else c(112, 88, 46)
    dirt = c(118, 92, 64)
    rock = c(112, 106, 100)
    sand = c(214, 190, 140) if setting != "coast" else c(176, 152, 110)
    mix = np.clip(0.5 + 0.35 * n3 + 0.3 * n1, 0, 1)[:, None]
    col = grass[None] * mix + grass2[None] * (1 - mix)
    steep = np.clip((0.86 - ny) / 0.12, 0, 1)[:, None]
    if setting in ("desert",):
        col = c(222, 176, 120)[None] * (1 + 0.08 * n3[:, None]) + 0 * col
        ripple = 0.06 * np.sin(x * 1.3 + z * 0.6 + 2 * n1) * fine
        col = col * (1 + ripple[:, None])
        steep = steep * 0.3
        rock = c(170, 112, 74)
    elif setting == "canyon":
        band = np.floor(g / 7.0 + 0.35 * n3)
        palette = np.array(
            [
                S._srgb(184, 96, 58),
                S._srgb(200, 122, 76),
                S._srgb(160, 80, 52),
                S._srgb(214, 150, 100),
                S._srgb(176, 104, 70),
            ],
            np.float32,
        )
        strata = palette[(band.astype(np.int64) % len(palette))]
        flat = np.clip((ny - 0.8) / 0.15, 0, 1)[:, None]
        col = strata * (1 - flat) + c(206, 150, 104)[None] * flat
        steep = steep * 0.0
    elif setting == "mountains":
        rock = c(104, 104, 110)  # cool grey granite, so warm light reads as light, not as rock colour
        high = np.clip((g - 60.0 - 40 * n3) / 120.0, 0, 1)[:, None]
        col = col * (1 - high) + (rock[None] * 0.9 + dirt[None] * 0.1) * high
        steep = np.clip((0.9 - ny) / 0.15, 0, 1)[:, None]
    elif setting == "city":
        road = np.abs(x) < 6.0
        walk = (np.abs(x) >= 6.0) & (np.abs(x) < 9.0)
        asphalt = c(58, 58, 62)[None] * (1 + 0.1 * n2[:, None] * fine[:, None])
        # Dashes leave a gap where the camera stands, so the nadir is not one white blob.
        mark = (np.abs(x) < 0.12) & (np.mod(z - 2.5, 9.0) < 4.5)
        edge = np.abs(np.abs(x) - 5.7) < 0.1
        asphalt = np.where((mark | edge)[:, None], c(220, 210, 170)[None], asphalt)
        tile = (np.mod(z, 1.5) < 0.05) | (np.mod(x, 1.5) < 0.05)
        concrete = c(150, 148, 144)[None] * (1 - 0.25 * tile[:, None])
        col = np.where(road[:, None], asphalt, np.where(walk[:, None], concrete, c(120, 118, 115)[None]))
        sem = np.where(road, _sem("road"), sem).astype(np.uint8)
        steep = steep * 0
    else:
        if setting == "village":
            path = np.abs(np.abs(np.hypot(x, z) - 40.0) - 0) < 1.6
            col = np.where(path[:, None], dirt[None], col)
        if setting in ("forest", "lake") or spec.objects.get("pine", 0) + spec.objects.get("broadleaf", 0) > 1.2:
            # Far forest canopy stands in for trees beyond the placed ones.
            canopy = np.clip((np.hypot(x, z) - 230.0) / 60.0, 0, 1) * np.clip((ny - 0.6) / 0.2, 0, 1)
            canopy = canopy * (g < 0.55 * spec.relief * 4 + 200)
            cc = c(34, 58, 32)[None] * (1 + 0.35 * _tex(scene, x / 9.0, z / 9.0, 1))[:, None]
            col = col * (1 - canopy[:, None]) + cc * canopy[:, None]
            sem = np.where(canopy > 0.5, _sem("vegetation"), sem).astype(np.uint8)
    col = col * (1 - steep) + rock[None] * steep * (1 + 0.15 * n1[:, None])
    if scene.water_level is not None:
        wl = scene.water_level
        reach = 2.4 + 1.2 * n3 if (setting == "coast" or spec.water == "sea") else 0.35
        beach = np.clip(1 - (y - wl) / reach, 0, 1)[:, None] * (ny[:, None] > 0.7)
        if setting == "coast" or spec.water == "sea":
            beach = np.clip(beach * 3.0, 0, 1)
            # Wet, darker sand along the waterline.
            ripple = 1 + 0.06 * np.sin(x * 2.1 + z * 0.7 + 2 * n1) * fine + 0.06 * n2 * fine
            sand = np.where((y < wl + 0.25 + 0.05 * n1)[:, None], sand[None] * 0.7, sand[None] * ripple[:, None])
        col = col * (1 - beach) + sand * beach
        wet = (y < wl)[:, None]
        col = np.where(wet, col * 0.5, col)
    if setting == "mountains" or spec.snow_cover:
        # Snow lies on gentle slopes; high up it also clings to steep ones, so peaks and upper
        # slopes are white with rock showing only on the sheerest faces. Mountains keep snow caps
        # even without a snowy prompt.
        alt = np.clip(g / max(spec.relief, 1.0), 0, 1.5)
        if spec.snow_cover:
            hold = np.clip((ny - 0.62 + 0.45 * alt + 0.12 * n1) / 0.12, 0, 1)
        else:
            hold = np.clip((ny - 0.75 + 0.45 * alt + 0.12 * n1) / 0.12, 0, 1) * np.clip(
                (alt - 0.55 + 0.15 * n3) / 0.1, 0, 1
            )
        snow = c(236, 240, 248)[None] * (1 + 0.03 * n2[:, None])
        col = col * (1 - hold[:, None]) + snow * hold[:, None]
    if spec.weather == "rain":
        col = col * 0.7
    col = col * var[:, None]
    return np.clip(col, 0, 1).astype(np.float32), sem


def _surface(scene: S.Scene, hits: _Hits, o: np.ndarray, d: np.ndarray):
    """Position, normal, albedo, emission, semantic id and shine of every non-sky hit.

    Returns (sel [m] ray index, pos [m,3], nrm [m,3], albedo [m,3], emit [m,3], sem [m], shine [m]).
    """
    sel = np.nonzero(hits.kind != K_SKY)[0]
    t = hits.t[sel]
    pos = o[sel] + d[sel] * t[:, None]
    m = sel.size
    nrm = np.zeros((m, 3))
    alb = np.zeros((m, 3), np.float32)
    emit = np.zeros((m, 3), np.float32)
    sem = np.zeros(m, np.uint8)
    shine = np.zeros(m, np.float32)
    kind = hits.kind[sel]
    prim = hits.prim[sel]
    spec = scene.spec
    # Terrain.
    k = np.nonzero(kind == K_TERRAIN)[0]
    if k.size:
        nrm[k] = scene.terrain.normal(pos[k, 0], pos[k, 2])
        alb[k], sem[k] = _terrain_albedo(scene, pos[k], nrm[k], t[k])
    k = np.nonzero(kind == K_WATER)[0]
    if k.size:
        nrm[k] = [0.0, 1.0, 0.0]
        coast = spec.setting == "coast" or spec.water == "sea"
        deep = np.array(S._srgb(20, 50, 60) if not coast else S._srgb(14, 58, 84), np.float32)
        col = np.repeat(deep[None], k.size, 0)
        sh = np.ones(k.size, np.float32)
        if scene.terrain is not None:
            # Shallows take the colour of the bed (turquoise over sand at sea) and the sea
            # breaks in a line of foam along the shore.
            px, pz = pos[k, 0], pos[k, 2]
            under = scene.water_level - scene.terrain.height(px, pz)
            shallow = np.array(S._srgb(64, 168, 160) if coast else S._srgb(70, 84, 60), np.float32)
            f = np.clip(under / (5.0 if coast else 1.5), 0, 1).astype(np.float32)[:, None]
            col = shallow[None] * (1 - f) + col * f
            if coast:
                wob = _tex(scene, px / 3.0, pz / 3.0, 0)
                foam = np.clip((0.35 + 0.15 * wob - under) / 0.12, 0, 1).astype(np.float32)
                col = col * (1 - foam[:, None]) + np.array(S._srgb(235, 240, 240), np.float32)[None] * foam[:, None]
                sh = 1 - foam
        if spec.snow_cover and not coast:
            # A frozen lake: pale blue-white ice with a dull sheen, dusted with snow.
            n = _tex(scene, pos[k, 0] / 4.0, pos[k, 2] / 4.0, 1)
            ice = np.array(S._srgb(190, 208, 222), np.float32)[None] * (1 + 0.06 * n[:, None])
            col = ice
            sh = np.full(k.size, 0.25, np.float32)
        alb[k] = col
        sem[k] = _sem("water")
        shine[k] = sh
    k = np.nonzero(kind == K_ROOM)[0]
    if k.size:
        _room_surface(scene, pos[k], prim[k], nrm, alb, emit, sem, shine, k)
    k = np.nonzero(kind == K_OBJECT)[0]
    if k.size:
        q = prim[k]
        p = scene.prims
        nrm[k] = _prim_normals(p, q, pos[k])
        mats = p.material[q]
        _object_surface(scene, pos[k], nrm[k], mats, q, alb, emit, sem, shine, k, t[k])
    return sel, pos, nrm, alb, emit, sem, shine


def _room_surface(scene, pos, face, nrm, alb, emit, sem, shine, k) -> None:
    room = scene.room
    spec = scene.spec
    inward = np.zeros((len(face), 3))
    axis = face // 2
    inward[np.arange(len(face)), axis] = np.where(face % 2 == 1, -1.0, 1.0)
    nrm[k] = inward
    x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
    fy = y - room.lo[1]
    n1 = _tex(scene, x * 3.0, z * 3.0 + y * 3.0, 1)
    style = spec.interior_style

    def c(r, g, b):
        return np.array(S._srgb(r, g, b), np.float32)

    wall_col = {"wood": c(150, 100, 62), "stone": c(140, 134, 124), "plaster": c(220, 214, 200)}[style]
    col = np.repeat(wall_col[None], len(face), 0)
    s = np.full(len(face), _sem("wall"), np.uint8)
    if style == "wood":
        # Horizontal logs: dark seams every 0.3 m, rounded shading between.
        ph = np.mod(fy / 0.3, 1.0)
        log_shade = 0.7 + 0.35 * np.sin(ph * np.pi) + 0.08 * n1
        col = col * log_shade[:, None]
    elif style == "stone":
        col = col * (0.8 + 0.12 * n1 + 0.1 * _hash(np.floor(fy / 0.35), np.floor((x + z) / 0.6)))[:, None]
    floor = face == 2
    ceil = face == 3
    plank = (
        c(120, 78, 46)
        * (0.85 + 0.2 * _hash(np.floor(x / 0.2), np.floor(z / 1.8 + np.floor(x / 0.2) * 0.37)))[:, None]
        * (1 - 0.3 * (np.mod(x, 0.2) < 0.012))[:, None]
    )
    col = np.where(floor[:, None], plank, col)
    s = np.where(floor, _sem("floor"), s)
    beam = np.mod(z, 1.2) < 0.18
    cc = c(110, 72, 44) if style == "wood" else c(200, 196, 186)
    col = np.where(ceil[:, None], cc[None] * (1 - 0.35 * beam[:, None]), col)
    s = np.where(ceil, _sem("ceiling"), s)
    # Openings on the walls: wall 0..3 = -Z, +X, +Z, -X  (faces 4, 1, 5, 0).
    wall_of_face = {4: 0, 1: 1, 5: 2, 0: 3}
    wall = np.array([wall_of_face.get(int(f), -1) for f in range(6)])[face]
    u = np.where((wall == 0) | (wall == 2), x, z)
    night = spec.time_of_day in ("night", "dusk")
    for w_id, u0, u1, y0, y1, kd in room.openings:
        inside = (wall == int(w_id)) & (u >= u0) & (u <= u1) & (fy >= y0) & (fy <= y1)
        if not inside.any():
            continue
        frame = inside & (
            (u - u0 < 0.07) | (u1 - u < 0.07) | (fy - y0 < 0.07) | (y1 - fy < 0.07) | (np.abs(u - (u0 + u1) / 2) < 0.03)
        )
        if kd == 0:
            view = scene.light.horizon * (0.25 if not night else 1.0) + (0 if night else 0.6)
            glass = np.where(fy > (y0 + y1) / 2, 1.0, 0.75)[:, None] * view[None].astype(np.float32)
            pane = inside & ~frame
            emit[k[pane]] = (glass[pane] * (0.4 if night else 1.5)).astype(np.float32)
            col = np.where(pane[:, None], 0.02, col)
            col = np.where(frame[:, None], c(90, 60, 40)[None], col)
            s = np.where(inside, _sem("window"), s)
        else:
            door = c(96, 62, 38)[None] * (0.85 + 0.15 * (np.mod(u * 5, 1) < 0.9))[:, None]
            col = np.where(inside[:, None], door, col)
            s = np.where(inside, _sem("door"), s)
    alb[k] = np.clip(col, 0, 1)
    sem[k] = s


def _object_surface(scene, pos, nrm, mats, q, alb, emit, sem, shine, k, dist) -> None:
    table = scene.materials
    base = np.array([m.albedo for m in table], np.float32)[mats]
    em = np.array([m.emissive for m in table], np.float32)[mats]
    pat = np.array([m.pattern for m in table], np.int64)[mats]
    sm = np.array([m.semantic for m in table], np.uint8)[mats]
    sh = np.array([m.shine for m in table], np.float32)[mats]
    x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
    fine = np.clip(1.0 - dist / 120.0, 0, 1).astype(np.float32)
    n1 = _tex(scene, x * 1.7 + y * 0.9, z * 1.7 - y * 1.1, 0)
    n2 = _tex(scene, x * 6.0 + y * 3.0, z * 6.0 + y * 2.0, 1)
    col = base.copy()
    spec = scene.spec
    night = scene.light.night
    for p_id in np.unique(pat):
        s = pat == p_id
        if p_id == S.P_FOLIAGE:
            v = 0.6 + 0.25 * n1[s] + 0.3 * n2[s] * fine[s]
            col[s] *= np.clip(v, 0.25, 1.6)[:, None]
            if spec.snow_cover:
                cover = np.clip((nrm[s, 1] - 0.25 + 0.2 * n2[s]) / 0.2, 0, 1)
                col[s] = col[s] * (1 - cover[:, None]) + np.array(S._srgb(230, 236, 245))[None] * cover[:, None]
        elif p_id in (S.P_BARK, S.P_ROCK, S.P_FABRIC, S.P_PLAIN):
            col[s] *= np.clip(0.85 + 0.2 * n1[s] + 0.15 * n2[s] * fine[s], 0.4, 1.5)[:, None]
            if p_id == S.P_ROCK and spec.snow_cover:
                cover = np.clip((nrm[s, 1] - 0.4) / 0.2, 0, 1)
                col[s] = col[s] * (1 - cover[:, None]) + np.array(S._srgb(230, 236, 245))[None] * cover[:, None]
        elif p_id == S.P_FACADE:
            tang = np.stack([-nrm[s, 2], np.zeros(s.sum()), nrm[s, 0]], 1)
            u = (pos[s] * tang).sum(1)
            vert = np.abs(nrm[s, 1]) < 0.3
            house = sm[s] == _sem("house")
            cw, ch = np.where(house, 2.6, 3.2), np.where(house, 2.8, 3.5)
            gy = y[s] + scene.eye_height
            fu = np.mod(u / cw, 1.0)
            fv = np.mod(gy / ch, 1.0)
            win = vert & (fu > 0.3) & (fu < 0.7) & (fv > 0.3) & (fv < 0.78) & (gy > 1.0)
            cell = _hash(np.floor(u / cw), np.floor(gy / ch), q[s])
            lit = win & (cell > (0.45 if night else 2.0))
            glass = np.array(S._srgb(40, 52, 64), np.float32)
            cs = col[s] * (0.9 + 0.1 * n1[s, None])
            cs = np.where(win[:, None], glass[None], cs)
            col[s] = cs
            es = em[s]
            warm = np.array([3.2, 2.1, 0.9], np.float32) * (0.5 + cell[:, None].astype(np.float32))
            es = np.where(lit[:, None], warm, es)
            em[s] = es
            sh_s = sh[s]
            sh[s] = np.where(win, 0.6, sh_s)
            sm_s = sm[s]
            sm[s] = np.where(win, _sem("window"), sm_s)
        elif p_id == S.P_PLANKS:
            v = np.where(np.abs(nrm[s, 1]) > 0.5, x[s] * 6.0, y[s] * 6.0)
            col[s] *= (0.75 + 0.2 * np.abs(np.sin(v * math.pi)) + 0.1 * n2[s])[:, None]
        elif p_id == S.P_ROOF:
            col[s] *= (0.7 + 0.3 * (np.mod(y[s] * 3.5, 1.0) > 0.18) + 0.08 * n2[s])[:, None]
            if spec.snow_cover:
                col[s] = np.array(S._srgb(230, 234, 240), np.float32)[None] * (0.9 + 0.1 * n1[s, None])
        elif p_id == S.P_BOOKS:
            facing = np.abs(nrm[s, 0]) > 0.5
            shelf = np.mod(y[s] / 0.4, 1.0) < 0.12
            bk = _hash(np.floor(z[s] * 22.0), np.floor(y[s] / 0.4))
            pal = np.array(
                [
                    S._srgb(120, 30, 30),
                    S._srgb(30, 60, 100),
                    S._srgb(40, 90, 50),
                    S._srgb(160, 130, 60),
                    S._srgb(90, 50, 80),
                    S._srgb(200, 190, 160),
                ],
                np.float32,
            )
            book = pal[(bk * len(pal)).astype(np.int64)] * (0.8 + 0.2 * np.mod(bk * 7, 1))[:, None]
            col[s] = np.where((facing & ~shelf)[:, None], book, col[s] * 0.8)
        elif p_id == S.P_FIRE:
            flick = np.clip(0.5 + 0.5 * n2[s] + 0.3 * n1[s], 0.2, 1.5)
            em[s] = em[s] * flick[:, None]
        elif p_id == S.P_RUG:
            r = np.abs(np.mod(x[s] * 2.5 + z[s] * 2.5, 2.0) - 1.0) + np.abs(np.mod(x[s] * 2.5 - z[s] * 2.5, 2.0) - 1.0)
            col[s] *= (0.6 + 0.5 * (r > 1.0))[:, None]
        elif p_id == S.P_STONEWALL:
            mortar = np.mod(y[s] * 3.0, 1.0) < 0.08
            col[s] *= (0.75 + 0.25 * _hash(np.floor(y[s] * 3.0), np.floor((x[s] + z[s]) * 2.0)) - 0.35 * mortar)[
                :, None
            ]
    alb[k] = np.clip(col, 0, 1)
    emit[k] = em
    sem[k] = sm
    shine[k] = sh


def _shadow_map(scene: S.Scene):
    """Orthographic depth map of the objects seen from the sun, or None."""
    L = scene.light
    p = scene.prims
    if len(p) == 0 or L.night or L.sun_color.max() <= 0 or L.sun_dir[1] <= 0.01:
        return None
    back = L.sun_dir / np.linalg.norm(L.sun_dir)
    from ..geometry import look_rotation

    rot = look_rotation(-back)
    # Cover objects within 320 m of the camera.
    near = np.linalg.norm(p.bound_center[:, [0, 2]], axis=1) < 160.0
    if not near.any():
        return None
    c = p.bound_center[near]
    r = p.bound_radius[near]
    u = c @ rot[:, 0]
    v = c @ rot[:, 1]
    w = c @ rot[:, 2]
    u0, u1 = (u - r).min(), (u + r).max()
    v0, v1 = (v - r).min(), (v + r).max()
    res = 768  # ~0.4 m texels over the 320 m the map covers; PCF softens the steps
    texel = max(u1 - u0, v1 - v0) / res
    origin = rot[:, 2] * ((w + r).max() + 10.0)
    frame = _Frame("ortho", res, res, origin, rot, texel=texel, u0=u0, v0=v1)
    depth = np.empty((res, res))
    rows = 64

    def band(r0: int) -> None:
        r1 = min(res, r0 + rows)
        yy, xx = np.meshgrid(np.arange(r0, r1) + 0.5, np.arange(res) + 0.5, indexing="ij")
        o, d = frame.rays(xx.ravel(), yy.ravel())
        d = np.ascontiguousarray(d)
        hits = _trace(scene, frame, o, d, np.arange(r0 * res, r1 * res, dtype=np.int64), terrain=False)
        depth[r0:r1] = np.where(hits.kind == K_OBJECT, hits.t, np.inf).reshape(r1 - r0, res)

    _parallel(band, range(0, res, rows))
    return frame, depth


def _terrain_shadow(scene: S.Scene, pos: np.ndarray) -> np.ndarray:
    """Sun visibility over the terrain from a grid of shadow rays (every other vertex), bilinear. [n] float32

    The grid is traced once per scene and kept on it; hills then shade the ground with soft
    12 m penumbras instead of one shadow ray per pixel.
    """
    grid = getattr(scene, "_sun_grid", None)
    hf = scene.terrain
    if grid is None:
        L = scene.light
        stride = 2
        k = np.arange(0, hf.n + 1, stride)
        xs = -hf.half + hf.cell * k
        gx, gz = np.meshgrid(xs, xs, indexing="ij")
        gy = hf.heights[np.ix_(k, k)]
        o = np.stack([gx, gy + 0.3, gz], -1).reshape(-1, 3) + L.sun_dir * 0.5
        d = np.ascontiguousarray(np.broadcast_to(L.sun_dir, o.shape))
        t = np.empty(len(o))
        step = 1 << 15

        def part(s0: int) -> None:
            sl = slice(s0, s0 + step)
            t[sl] = _trace_terrain(hf, o[sl], d[sl], np.zeros(len(o[sl])), np.full(len(o[sl]), np.inf))

        _parallel(part, range(0, len(o), step))
        grid = np.isinf(t).astype(np.float32).reshape(len(k), len(k))
        scene._sun_grid = grid
    g = grid.shape[0]
    u = np.clip((pos[:, 0] + hf.half) / (hf.cell * 2), 0, g - 1.001)
    v = np.clip((pos[:, 2] + hf.half) / (hf.cell * 2), 0, g - 1.001)
    i = u.astype(np.int64)
    j = v.astype(np.int64)
    fu = (u - i).astype(np.float32)
    fv = (v - j).astype(np.float32)
    return (grid[i, j] * (1 - fu) + grid[i + 1, j] * fu) * (1 - fv) + (
        grid[i, j + 1] * (1 - fu) + grid[i + 1, j + 1] * fu
    ) * fv


def _shadow_lookup(sm, pos: np.ndarray) -> np.ndarray:
    """Fraction of sun light reaching pos through the objects' shadow map (2x2 PCF). [n] float32"""
    if sm is None:
        return np.ones(len(pos), np.float32)
    frame, depth = sm
    rel = pos - frame.origin
    u = rel @ frame.rot[:, 0]
    v = rel @ frame.rot[:, 1]
    w = -(rel @ frame.rot[:, 2])
    x = (u - frame.u0) / frame.texel - 0.5
    y = (frame.v0 - v) / frame.texel - 0.5
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    res = depth.shape[0]
    lit = np.zeros(len(pos))
    bias = 0.15 + 0.6 * frame.texel
    for dy_, dx_, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi = x0 + dx_
        yi = y0 + dy_
        inside = (xi >= 0) & (xi < res) & (yi >= 0) & (yi < res)
        dd = depth[np.clip(yi, 0, res - 1), np.clip(xi, 0, res - 1)]
        lit += wgt * np.where(inside, (w <= dd + bias), 1.0)
    return lit.astype(np.float32)


def _shade(
    scene: S.Scene,
    frame: _Frame,
    o: np.ndarray,
    d: np.ndarray,
    hits: _Hits,
    pix: np.ndarray,
    sm,
    reflections: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear radiance and semantic id of every ray. ([n, 3] float32, [n] uint8)"""
    n = len(d)
    o = np.broadcast_to(o, d.shape)
    L = scene.light
    rgb = np.zeros((n, 3), np.float32)
    ids = np.zeros(n, np.uint8)
    sky = hits.kind == K_SKY
    if sky.any():
        rgb[sky] = _sky(scene, d[sky])
    sel, pos, nrm, alb, emit, sem, shine = _surface(scene, hits, o, d)
    ids[sel] = sem
    if sel.size:
        ndl = np.clip(nrm @ L.sun_dir, 0, None).astype(np.float32)
        shadow = np.ones(sel.size, np.float32)
        if L.sun_color.max() > 0 and L.sun_dir[1] > 0:
            if scene.terrain is not None and scene.ground_style != "city":
                shadow *= _terrain_shadow(scene, pos)
            if sm is not None:
                shadow *= _shadow_lookup(sm, pos + nrm * 0.05)
        direct = L.sun_color[None].astype(np.float32) * (ndl * shadow)[:, None]
        up = (0.5 + 0.5 * nrm[:, 1]).astype(np.float32)[:, None]
        # Sky light comes mostly from overhead: at sunset shaded snow turns blue, not pink.
        sky_amb = (L.zenith * 0.85 + L.horizon * 0.4).astype(np.float32)
        amb = sky_amb[None] * up + L.ground_bounce.astype(np.float32)[None] * (1 - up)
        if scene.room is not None:
            amb = amb * 0.0 + _room_ambient(scene, pos)
        kind = hits.kind[sel]
        # Ambient occlusion for objects: darker towards their base, where they meet the ground.
        ao = np.ones(sel.size, np.float32)
        obj = kind == K_OBJECT
        if obj.any() and scene.terrain is not None:
            gh = scene.terrain.height(pos[obj, 0], pos[obj, 2])
            ao[obj] = np.clip(0.55 + 0.45 * (pos[obj, 1] - gh) / 2.0, 0.55, 1.0)
        light_sum = direct + amb * ao[:, None]
        if L.lights.shape[0]:
            light_sum = light_sum + _point_lights(L.lights, pos, nrm)
        col = alb * light_sum + emit
        # Specular sun glint on water and shiny surfaces.
        if (shine > 0).any() and L.sun_color.max() > 0:
            hv = L.sun_dir[None] - d[sel]
            hv /= np.linalg.norm(hv, axis=1, keepdims=True)
            spec_ = np.clip((nrm * hv).sum(1), 0, 1) ** 200 * shine * shadow
            col = col + (L.sun_color[None] * spec_[:, None] * 4).astype(np.float32)
        water = np.nonzero(kind == K_WATER)[0]
        if water.size:
            col[water] = _water(scene, frame, o, d, sel[water], pos[water], hits, pix, sm, reflections, col[water])
        rgb[sel] = col
    # Fog and haze over the path from the origin.
    return _fog(scene, o, d, hits.t, rgb), ids


def _room_ambient(scene: S.Scene, pos: np.ndarray) -> np.ndarray:
    """Soft ambient light inside a room, darker in corners. [n, 3] float32"""
    room = scene.room
    night = scene.light.night
    base = np.array([0.05, 0.04, 0.03] if night else [0.35, 0.36, 0.38], np.float32)
    if scene.spec.warm_light:
        base = base * np.array([1.2, 0.95, 0.7], np.float32)
    dl = np.minimum(pos - room.lo, room.hi - pos)
    near = np.sort(dl, axis=1)[:, 1]  # distance to the second-nearest wall: small in corners
    ao = np.clip(0.45 + near / 0.9, 0.45, 1.0).astype(np.float32)
    return base[None] * ao[:, None]


def _point_lights(lights: np.ndarray, pos: np.ndarray, nrm: np.ndarray) -> np.ndarray:
    """Light from point lights at surface points. [n, 3] float32

    Each light reaches 3x its range; points are binned on a ground grid of half that size, so each
    light only looks at the points in the 5x5 bins around it (float32 is ample for the falloff).
    """
    out = np.zeros((len(pos), 3), np.float32)
    if not len(lights) or not len(pos):
        return out
    cell = float(lights[:, 6].max() * 3) / 2
    off = 1 << 20
    p32 = pos.astype(np.float32)
    key = (
        (np.floor(pos[:, 0] / cell).astype(np.int64) + off) * (1 << 21)
        + np.floor(pos[:, 2] / cell).astype(np.int64)
        + off
    )
    order = np.argsort(key, kind="stable")
    skey = key[order]
    for lx, ly, lz, r, g, b, rng in lights:
        kx = math.floor(lx / cell) + off
        kz = math.floor(lz / cell) + off
        runs = []
        for dx in (-2, -1, 0, 1, 2):
            k0 = (kx + dx) * (1 << 21) + kz - 2
            runs.append(order[np.searchsorted(skey, k0, "left") : np.searchsorted(skey, k0 + 4, "right")])
        idx = np.concatenate(runs)
        if idx.size == 0:
            continue
        v = np.array([lx, ly, lz], np.float32) - p32[idx]
        d2 = np.einsum("ij,ij->i", v, v)
        near = d2 < np.float32((rng * 3) ** 2)
        if not near.any():
            continue
        idx, v, d2 = idx[near], v[near], d2[near]
        dist = np.sqrt(d2)
        cosl = np.clip(np.einsum("ij,ij->i", nrm[idx], v) / np.maximum(dist, 1e-6), 0, 1)
        fall = np.float32(rng * rng * 0.25) / (d2 + 1.0) * np.clip(1 - dist / np.float32(rng * 3), 0, 1) ** 2
        out[idx] += np.array([r, g, b], np.float32) * (cosl * fall)[:, None]
    return out


def _water(scene, frame, o, d, rays, pos, hits, pix, sm, reflections, base_col) -> np.ndarray:
    """Water colour: Fresnel blend of the refracted body colour and the reflection."""
    dd = d[rays]
    cos_i = np.clip(-dd[:, 1], 0, 1)
    fres = (0.02 + 0.98 * (1 - cos_i) ** 5).astype(np.float32)
    # Small ripples: perturb the mirror direction with noise.
    rx = _tex(scene, pos[:, 0] / 0.9, pos[:, 2] / 0.4, 1) * 0.015
    rz = _tex(scene, pos[:, 0] / 0.5, pos[:, 2] / 1.1, 0) * 0.015
    rd = dd * np.array([1.0, -1.0, 1.0])
    rd = rd + np.stack([rx, np.zeros_like(rx), rz], 1)
    rd /= np.linalg.norm(rd, axis=1, keepdims=True)
    if scene.spec.snow_cover and scene.spec.setting != "coast" and scene.spec.water != "sea":
        # Ice: a dull, mostly diffuse surface that only mirrors the sky faintly at grazing angles.
        return base_col * (1 - 0.35 * fres[:, None]) + _sky(scene, rd) * fres[:, None] * 0.3
    if reflections and scene.water_level is not None:
        sub_o = pos + rd * 0.0
        sub_h = _trace(scene, frame, sub_o, rd, pix[rays], tmin=np.full(len(rays), 0.01), mirror=scene.water_level)
        refl, _ = _shade(scene, frame, sub_o, rd, sub_h, pix[rays], sm, reflections=False)
    else:
        refl = _sky(scene, rd)
    return base_col * (1 - fres[:, None]) + refl * fres[:, None] * 0.9


def _fog(scene: S.Scene, o: np.ndarray, d: np.ndarray, t: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    L = scene.light
    g = -scene.eye_height
    y0 = o[:, 1] - g
    dy = d[:, 1]
    tt = np.where(np.isfinite(t), t, 1e9)
    haze = 1 - np.exp(
        -np.minimum(tt, 60000.0) * L.haze * np.exp(-np.clip(y0 + dy * np.minimum(tt, 20000) * 0.5, 0, None) / 3000.0)
    )
    haze = np.where(np.isfinite(t), haze, 0.0)
    fog = np.zeros_like(haze)
    if L.fog > 0:
        hH = L.fog_height
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y1 = y0 + dy * tt
            e0 = np.exp(-np.clip(y0, -50, None) / hH)
            e1 = np.exp(-np.clip(y1, -50, None) / hH)
            integ = np.where(np.abs(dy) > 1e-4, L.fog * hH * (e0 - e1) / dy, L.fog * e0 * tt)
        fog = 1 - np.exp(-np.clip(integ, 0, 60))
    amt = (1 - (1 - haze) * (1 - fog)).astype(np.float32)[:, None]
    cosang = d @ L.sun_dir
    fc = L.fog_color[None] + L.glow[None] * (np.exp((cosang - 1) * 4.0)[:, None] * 0.25)
    if scene.room is not None:
        return rgb
    return rgb * (1 - amt) + fc.astype(np.float32) * amt


def _tonemap(rgb: np.ndarray, exposure: float) -> np.ndarray:
    """Filmic curve (ACES fit) then sRGB encoding. [n, 3] -> [n, 3] float32 in [0, 1]"""
    x = np.maximum(rgb * exposure, 0)
    a, b, c, dd, e = 2.51, 0.03, 2.43, 0.59, 0.14
    y = np.clip((x * (a * x + b)) / (x * (c * x + dd) + e), 0, 1)
    return linear_to_srgb(y)


# --------------------------------------------------------------------------------------------
# Public rendering functions
# --------------------------------------------------------------------------------------------


def _scene_shadow_map(scene: S.Scene):
    """:func:`_shadow_map`, computed once per scene: it does not depend on the camera, and
    previews render several views of one scene (worldgen.report)."""
    key = (id(scene.light), id(scene.prims))  # a scene given new lights or objects gets a new map
    cached = scene.__dict__.get("_shadow_map")
    if cached is None or cached[0] != key:
        cached = scene.__dict__["_shadow_map"] = (key, _shadow_map(scene))
    return cached[1]


def _render(scene: S.Scene, frame: _Frame, antialias: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = frame.height, frame.width
    sm = _scene_shadow_map(scene)
    rgb = np.zeros((h * w, 3), np.float32)
    depth = np.zeros(h * w, np.float32)
    ids = np.zeros(h * w, np.uint8)
    key = np.zeros(h * w, np.int64)
    rows = max(1, _ROWS_PER_BAND_PIXELS // (4 * w))
    if scene.terrain is not None and scene.ground_style != "city" and not scene.light.night:
        _terrain_shadow(scene, np.zeros((0, 3)))  # build the shared grid before the threads start

    cols = None
    if scene.terrain is not None and frame.kind == "equirect" and np.array_equal(frame.rot, np.eye(3)):
        cols = _column_profiles(scene.terrain, frame)

    def band(r0: int) -> None:
        r1 = min(h, r0 + rows)
        yy, xx = np.meshgrid(np.arange(r0, r1) + 0.5, np.arange(w) + 0.5, indexing="ij")
        o, d = frame.rays(xx.ravel(), yy.ravel())
        d = np.ascontiguousarray(d)
        pix = np.arange(r0 * w, r1 * w, dtype=np.int64)
        tt = None if cols is None else _column_hits(cols, yy.ravel(), pix % w, frame)
        hits = _trace(scene, frame, o, d, pix, terrain_t=tt)
        col, sem = _shade(scene, frame, o, d, hits, pix, sm)
        sl = slice(r0 * w, r1 * w)
        rgb[sl] = _tonemap(col, scene.light.exposure)
        depth[sl] = hits.t.astype(np.float32)
        ids[sl] = sem
        key[sl] = hits.kind.astype(np.int64) * (1 << 32) + hits.prim

    # Bands are independent and write disjoint slices, so threads change nothing but the time
    # (numpy releases the GIL inside its array loops).
    _parallel(band, range(0, h, rows))
    rgb = rgb.reshape(h, w, 3)
    if antialias:
        rgb = _antialias(scene, frame, rgb, key.reshape(h, w), depth.reshape(h, w), sm)
    depth = depth.reshape(h, w)
    depth[~np.isfinite(depth)] = np.inf
    return rgb, depth, ids.reshape(h, w)


def _parallel(fn, items) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .._resources import cpu_count

    workers = max(1, min(4, cpu_count()))
    if workers == 1:
        for it in items:
            fn(it)
        return
    with ThreadPoolExecutor(workers) as ex:
        for f in [ex.submit(fn, it) for it in items]:
            f.result()


def _antialias(scene, frame, rgb, key, depth, sm) -> np.ndarray:
    """Supersample edge pixels' colour (depth and ids stay those of the pixel centre).

    Pixels on silhouettes or depth jumps trace four more rays through the whole scene. Pixels
    whose neighbours show the same surface but a different colour (window grids, snow lines,
    shadow edges, clouds) only re-shade: their extra samples land on the plane tangent to the
    centre's surface, which is exact for flat surfaces and within a fraction of a pixel's
    footprint on curved ones, at the cost of shading alone.
    """
    h, w = key.shape
    wrap = frame.kind == "equirect"
    lum = rgb @ np.array([0.3, 0.5, 0.2], np.float32)
    geo = np.zeros((h, w), bool)
    tex = np.zeros((h, w), bool)

    def mark(m: np.ndarray, diff: np.ndarray, axis: int) -> None:
        if axis == 1:
            m[:, :-1] |= diff
            m[:, 1:] |= diff
        else:
            m[:-1] |= diff
            m[1:] |= diff

    mark(geo, key[:, 1:] != key[:, :-1], 1)
    mark(geo, key[1:] != key[:-1], 0)
    with np.errstate(invalid="ignore"):
        mark(geo, np.abs(np.diff(depth, axis=1)) > 0.05 * np.minimum(depth[:, 1:], depth[:, :-1]), 1)
    mark(tex, np.abs(np.diff(lum, axis=1)) > 0.06, 1)
    mark(tex, np.abs(np.diff(lum, axis=0)) > 0.06, 0)
    if wrap:
        seam = key[:, 0] != key[:, -1]
        geo[:, 0] |= seam
        geo[:, -1] |= seam
        seam = np.abs(lum[:, 0] - lum[:, -1]) > 0.06
        tex[:, 0] |= seam
        tex[:, -1] |= seam
    pix_geo = np.nonzero(geo.ravel())[0]
    pix_tex = np.nonzero((tex & ~geo).ravel())[0]
    if pix_geo.size + pix_tex.size == 0:
        return rgb
    out = rgb.reshape(-1, 3).copy()
    ns = len(_AA_OFFSETS)
    step = 8192  # pixels per chunk: small enough to keep both cores busy to the end
    flat_depth = depth.ravel()
    flat_key = key.ravel()

    def samples(pp: np.ndarray):
        # Rays grouped per pixel (ascending pixel, then sample), as _pairs expects.
        rr = np.repeat(pp, ns)
        off = np.tile(_AA_OFFSETS, (len(pp), 1))
        x = (rr % w) + 0.5 + off[:, 0]
        y = np.clip((rr // w) + 0.5 + off[:, 1], 1e-6, h - 1e-6)
        o, d = frame.rays(x, y)
        return rr, np.ascontiguousarray(np.broadcast_to(o, d.shape)), np.ascontiguousarray(d)

    def finish(pp: np.ndarray, col: np.ndarray) -> None:
        col = _tonemap(col, scene.light.exposure).reshape(len(pp), ns, 3)
        out[pp] = ((out[pp].astype(np.float64) + col.sum(1)) / (1 + ns)).astype(np.float32)

    def chunk_geo(s0: int) -> None:
        pp = pix_geo[s0 : s0 + step]
        rr, o, d = samples(pp)
        hits = _trace(scene, frame, o, d, rr)
        finish(pp, _shade(scene, frame, o, d, hits, rr, sm)[0])

    def chunk_tex(s0: int) -> None:
        pp = pix_tex[s0 : s0 + step]
        oc, dc = frame.rays(pp % w + 0.5, pp // w + 0.5)
        oc = np.ascontiguousarray(np.broadcast_to(oc, dc.shape))
        kk = flat_key[pp]
        kind = ((kk + 1) >> 32).astype(np.int8)  # key = kind * 2^32 + prim, prim >= -1
        prim = (kk - kind.astype(np.int64) * (1 << 32)).astype(np.int32)
        tc = flat_depth[pp].astype(np.float64)
        centre = _Hits(tc, kind, prim)
        sel, pos, nrm = _surface(scene, centre, oc, dc)[:3]
        rr, o, d = samples(pp)
        # The centre's tangent plane, per sample.
        pn = np.zeros((len(pp), 3))
        pp0 = np.zeros((len(pp), 3))
        pn[sel], pp0[sel] = nrm, pos
        pn, pp0 = np.repeat(pn, ns, 0), np.repeat(pp0, ns, 0)
        den = (d * pn).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = ((pp0 - o) * pn).sum(1) / den
        tr = np.repeat(tc, ns)
        ts = np.where(np.isfinite(ts) & (ts > 0) & (np.abs(den) > 1e-6), ts, tr)
        ts = np.where(np.isfinite(tr), ts, np.inf)
        hits = _Hits(ts, np.repeat(kind, ns), np.repeat(prim, ns))
        finish(pp, _shade(scene, frame, o, d, hits, rr, sm)[0])

    _parallel(chunk_geo, range(0, pix_geo.size, step))
    _parallel(chunk_tex, range(0, pix_tex.size, step))
    return out.reshape(h, w, 3)


def render_panorama(
    scene: S.Scene, height: int, *, antialias: bool = True, origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render an equirect panorama with exact depth and class ids.

    Args:
        scene: the world (see :func:`worldgen.procedural.build_scene`).
        height: panorama height H in pixels (width 2H).
        antialias: supersample silhouettes and colour edges (colour only).
        origin: camera centre, metres (the capture point is the origin).

    Returns:
        A tuple: **rgb** sRGB in [0, 1] [H, 2H, 3] float32; **depth** Euclidean distance from
        ``origin``, metres, +inf on sky [H, 2H] float32; **ids** class ids into
        SEMANTIC_CLASSES (0 = sky exactly where depth is +inf) [H, 2H] uint8.

    Convention:
        The ERP mapping of worldgen.geometry: pixel centres at +0.5, column 0 starts at the
        seam behind the viewer (+Z), the image centre looks along -Z.
    """
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 2:
        raise InputError(f"panorama height {height!r} must be an integer >= 2")
    frame = _Frame("equirect", int(height), 2 * int(height), np.asarray(origin, np.float64), np.eye(3))
    return _render(scene, frame, antialias)


def render_view(scene: S.Scene, camera: Camera, *, antialias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render any camera pose: perspective or equirect, with exact depth and class ids.

    Args:
        scene: the world.
        camera: a worldgen Camera; its cam_to_world places it anywhere (glTF camera frame).

    Returns:
        A tuple: **rgb** sRGB [h, w, 3] float32; **depth** Euclidean ray length from the camera
        centre, metres, +inf on sky [h, w] float32; **ids** class ids [h, w] uint8.
    """
    if not isinstance(camera, Camera):
        raise InputError("render_view needs a worldgen.types.Camera")
    m = camera.cam_to_world
    rot = m[:3, :3]
    if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6):
        raise InputError("camera cam_to_world must be a rigid transform (orthonormal rotation, no scale)")
    if camera.model == "equirect":
        frame = _Frame("equirect", camera.height, camera.width, m[:3, 3].copy(), rot.copy())
    else:
        frame = _Frame(
            "perspective",
            camera.height,
            camera.width,
            m[:3, 3].copy(),
            rot.copy(),
            fx=camera.fx,
            fy=camera.fy,
            cx=camera.cx,
            cy=camera.cy,
        )
    return _render(scene, frame, antialias)
