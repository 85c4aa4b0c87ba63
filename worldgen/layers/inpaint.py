"""Inpainting the hidden background's colour in panorama space, with inpainters registered by name.

An inpainter fills the ``hole`` pixels of a panorama-space image from the rest of it:
``fn(image [H, W, 3] float32 in [0, 1], hole [H, W] bool, guide [H, W] float32 | None, seed) ->
[H, W, 3] float32`` (pixels outside the hole are returned unchanged). ``guide`` is a structure
channel known everywhere, including inside the hole (the layers use log-depth of the continued
background), so a patch behind a sofa is matched with patches of the floor at the same distance,
not with the sofa. Longitude wraps; rows clamp at the poles.

Registered:

- ``patchmatch`` (default, no weights): coarse-to-fine PatchMatch with patch voting, the
  completion scheme of Wexler, Shechtman & Irani (2007) with Barnes et al.'s (2009) randomised
  nearest-neighbour search. Every hole pixel keeps a nearest-neighbour field entry, the centre
  of a source patch lying wholly outside the hole; per iteration each entry tries its four
  neighbours' entries shifted back by the step (at jumps of 1 and 4 pixels, all pixels at once,
  as jump flooding does) and random candidates in shrinking windows, keeps the one with the
  smallest patch distance (colour plus ``guide_weight`` x guide, squared, over 5x5 patches), then
  every hole pixel becomes the mean of what the overlapping patches' sources say it is. Textures
  and edges continue from the surroundings instead of blurring.
- ``diffuse``: harmonic fill (repeated 4-neighbour averaging, coarse to fine). Smooth; a baseline.

- ``diffusion`` (worldgen/layers/diffusion.py): the ``fill`` model role's diffusers inpainting
  pipeline refines a patchmatch pre-fill; needs ``model=`` (a pipeline folder).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError

Inpainter = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", int], np.ndarray]
INPAINTERS: dict[str, Inpainter] = {}


def register_inpainter(name: str, fn: Inpainter) -> None:
    """Make ``fn`` available as ``inpaint(name, ...)`` (and ``--set mesh.inpaint=NAME``)."""
    INPAINTERS[name] = fn


def inpaint(name: str, image: np.ndarray, hole: np.ndarray, guide: np.ndarray | None = None, seed: int = 0, **options):
    """Fill ``hole`` of ``image`` with the inpainter registered as ``name``.

    Args:
        name: a registered inpainter ("patchmatch", "diffuse").
        image: colour in [0, 1]. [H, W, 3] float
        hole: pixels to fill. [H, W] bool
        guide: structure channel known everywhere (e.g. log-depth), or None. [H, W] float
        seed: random seed (same inputs and seed give the same result).
        options: passed on to the inpainter (e.g. ``model=`` for "diffusion").

    Returns:
        [H, W, 3] float32; equal to ``image`` outside ``hole``.
    """
    if name not in INPAINTERS:
        raise InputError(f"unknown inpainter {name!r}; use one of {', '.join(sorted(INPAINTERS))}")
    image = np.asarray(image, np.float32)
    hole = np.asarray(hole, bool)
    if image.ndim != 3 or image.shape[:2] != hole.shape:
        raise InputError(f"inpainting needs an [H, W, 3] image and an [H, W] hole; got {image.shape} and {hole.shape}")
    if not hole.any():
        return image.copy()
    if hole.all():
        raise InputError("the inpainting hole covers the whole image; nothing to fill it from")
    out = INPAINTERS[name](image, hole, None if guide is None else np.asarray(guide, np.float32), seed, **options)
    out = np.where(hole[..., None], out, image).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------
# Pyramid helpers (longitude wraps; rows clamp)
# --------------------------------------------------------------------------------------------


def _down(img: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-size image averaged over known pixels, and its known mask (any known child)."""
    H, W = known.shape
    h, w = H // 2, W // 2
    k = known[: 2 * h, : 2 * w].reshape(h, 2, w, 2).astype(np.float32)
    x = img[: 2 * h, : 2 * w].reshape(h, 2, w, 2, -1)
    s = (x * k[..., None]).sum((1, 3))
    c = k.sum((1, 3))
    return s / np.maximum(c, 1)[..., None], c > 0


def _up(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest upsampling by 2 to ``shape`` (edge rows/columns repeated)."""
    out = np.repeat(np.repeat(img, 2, 0), 2, 1)
    H, W = shape
    out = out[:H, :W]
    if out.shape[0] < H or out.shape[1] < W:
        out = np.pad(out, ((0, H - out.shape[0]), (0, W - out.shape[1])) + ((0, 0),) * (img.ndim - 2), mode="edge")
    return out


def _neighbour_mean(img: np.ndarray) -> np.ndarray:
    """Mean of the 4 neighbours (longitude wraps, rows clamp)."""
    up = np.concatenate([img[:1], img[:-1]], 0)
    dn = np.concatenate([img[1:], img[-1:]], 0)
    return 0.25 * (up + dn + np.roll(img, 1, 1) + np.roll(img, -1, 1))


def _diffuse_level(img: np.ndarray, hole: np.ndarray, iterations: int) -> np.ndarray:
    out = img.copy()
    for _ in range(iterations):
        out = np.where(hole[..., None], _neighbour_mean(out), img)
    return out


def _pyramid(img: np.ndarray, hole: np.ndarray, min_size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(image, hole)] from full size down; coarse holes are pixels with no known child."""
    levels = [(img, hole)]
    while min(levels[-1][1].shape) >= 2 * min_size and levels[-1][1].any():
        x, h = levels[-1]
        xs, known = _down(x, ~h)
        levels.append((xs, ~known))
    return levels


def inpaint_diffuse(image: np.ndarray, hole: np.ndarray, guide: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Harmonic fill, coarse to fine (guide and seed unused). [H, W, 3] float32"""
    levels = _pyramid(image, hole)
    x, h = levels[-1]
    est = _diffuse_level(np.where(h[..., None], x[~h].mean(0) if (~h).any() else 0.5, x), h, 64)
    for x, h in reversed(levels[:-1]):
        est = _diffuse_level(np.where(h[..., None], _up(est, h.shape), x), h, 16)
    return est.astype(np.float32)


# --------------------------------------------------------------------------------------------
# PatchMatch completion
# --------------------------------------------------------------------------------------------

_HALF = 2  # 5x5 patches


class _Level:
    """One pyramid level's arrays and patch-distance machinery."""

    def __init__(self, feat: np.ndarray, hole: np.ndarray):
        self.H, self.W = hole.shape
        self.feat = feat  # [H, W, C] colour + weighted guide (hole pixels: current estimate)
        self.hole = hole
        # Valid source centres: no hole pixel in the patch, rows fully inside the image.
        bad = hole.copy()
        for dy in range(-_HALF, _HALF + 1):
            for dx in range(-_HALF, _HALF + 1):
                bad |= np.roll(_rows(hole, dy), dx, 1)
        bad[:_HALF] = True
        bad[self.H - _HALF :] = True
        self.src_ok = ~bad
        self.hy, self.hx = np.nonzero(hole)

    def dist(self, ty, tx, sy, sx) -> np.ndarray:
        """Sum of squared feature differences between patches at targets and sources. [n]"""
        H, W = self.H, self.W
        out = np.zeros(len(ty), np.float32)
        for dy in range(-_HALF, _HALF + 1):
            a_y = np.clip(ty + dy, 0, H - 1)
            b_y = np.clip(sy + dy, 0, H - 1)
            for dx in range(-_HALF, _HALF + 1):
                diff = self.feat[a_y, (tx + dx) % W] - self.feat[b_y, (sx + dx) % W]
                out += np.einsum("ij,ij->i", diff, diff)
        return out

    def valid(self, sy, sx) -> np.ndarray:
        ok = (sy >= 0) & (sy < self.H)
        res = np.zeros(len(sy), bool)
        res[ok] = self.src_ok[sy[ok], sx[ok] % self.W]
        return res


def _rows(a: np.ndarray, dy: int) -> np.ndarray:
    """a shifted by dy rows (content moves down for dy > 0), edge rows repeated."""
    if dy == 0:
        return a
    if dy > 0:
        return np.concatenate([np.repeat(a[:1], dy, 0), a[:-dy]], 0)
    return np.concatenate([a[-dy:], np.repeat(a[-1:], -dy, 0)], 0)


def _search(L: _Level, ny: np.ndarray, nx: np.ndarray, nd: np.ndarray, rng: np.random.Generator, rounds: int):
    """Improve the nearest-neighbour field (ny, nx: [n] source centres of L's hole pixels) in place."""
    ty, tx = L.hy, L.hx
    H, W = L.H, L.W
    lookup = np.full((H, W), -1, np.int64)
    lookup[ty, tx] = np.arange(len(ty))

    def consider(cy, cx):
        cx = cx % W
        ok = L.valid(cy, cx)
        if not ok.any():
            return
        i = np.nonzero(ok)[0]
        dd = L.dist(ty[i], tx[i], cy[i], cx[i])
        better = dd < nd[i]
        j = i[better]
        ny[j], nx[j], nd[j] = cy[i][better], cx[i][better], dd[better]

    for _ in range(rounds):
        for step in (4, 1):
            for sy, sx in ((0, step), (0, -step), (step, 0), (-step, 0)):
                qy, qx = ty + sy, (tx + sx) % W
                inside = (qy >= 0) & (qy < H)
                k = np.full(len(ty), -1, np.int64)
                k[inside] = lookup[qy[inside], qx[inside]]
                has = k >= 0
                cy = np.where(has, ny[np.maximum(k, 0)] - sy, -1)
                cx = np.where(has, nx[np.maximum(k, 0)] - sx, 0)
                consider(cy, cx)
        radius = max(H, W) // 2
        while radius >= 1:
            cy = ny + rng.integers(-radius, radius + 1, len(ny))
            cx = nx + rng.integers(-radius, radius + 1, len(nx))
            consider(cy, cx)
            radius //= 4


def _vote(L: _Level, ny: np.ndarray, nx: np.ndarray, nd: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Each hole pixel = weighted mean of the colours its overlapping patches' sources give it. [n, 3]"""
    H, W = L.H, L.W
    ty, tx = L.hy, L.hx
    lookup = np.full((H, W), -1, np.int64)
    lookup[ty, tx] = np.arange(len(ty))
    sigma = float(np.median(nd)) + 1e-6
    w_all = np.exp(-nd / (2 * sigma))
    acc = np.zeros((len(ty), 3), np.float64)
    wsum = np.zeros(len(ty), np.float64)
    for dy in range(-_HALF, _HALF + 1):
        for dx in range(-_HALF, _HALF + 1):
            qy, qx = ty - dy, (tx - dx) % W  # the patch centred at q covers this pixel at offset (dy, dx)
            inside = (qy >= 0) & (qy < H)
            k = np.full(len(ty), -1, np.int64)
            k[inside] = lookup[qy[inside], qx[inside]]
            has = k >= 0
            kk = k[has]
            sy = np.clip(ny[kk] + dy, 0, H - 1)
            sx = (nx[kk] + dx) % W
            w = w_all[kk]
            acc[has] += colour[sy, sx] * w[:, None]
            wsum[has] += w
    return (acc / np.maximum(wsum, 1e-12)[:, None]).astype(np.float32)


def inpaint_patchmatch(
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    *,
    guide_weight: float = 1.0,
    iterations: int = 3,
) -> np.ndarray:
    """Coarse-to-fine PatchMatch completion (see the module docstring). [H, W, 3] float32"""
    rng = np.random.default_rng(seed)
    g = np.zeros(hole.shape, np.float32) if guide is None else guide.astype(np.float32)
    img = np.concatenate([image.astype(np.float32), guide_weight * g[..., None]], -1)
    levels = _pyramid(img, hole)
    # The guide is known inside the hole: its pyramid averages every child, not only known ones.
    guides = [g]
    for _ in levels[1:]:
        guides.append(_down(guides[-1][..., None], np.ones(guides[-1].shape, bool))[0][..., 0])
    x, h = levels[-1]
    est = inpaint_diffuse(x[..., :3], h) if h.any() and (~h).any() else x[..., :3]
    nnf = None
    for lvl in range(len(levels) - 1, -1, -1):
        x, h = levels[lvl]
        colour = np.where(h[..., None], _up(est, h.shape) if est.shape[:2] != h.shape else est, x[..., :3])
        if not h.any():
            est = colour
            nnf = None
            continue
        feat = np.concatenate([colour, guide_weight * guides[lvl][..., None]], -1).astype(np.float32)
        L = _Level(feat, h)
        if not L.src_ok.any():  # a level too small to hold any whole source patch: keep the estimate
            est = colour
            continue
        n = len(L.hy)
        # Initial field: the coarser level's, doubled, where it maps to a valid source; else random.
        sy_all, sx_all = np.nonzero(L.src_ok)
        pick = rng.integers(0, len(sy_all), n)
        ny, nx = sy_all[pick].copy(), sx_all[pick].copy()
        if nnf is not None:
            # An odd-sized level's last row/column has no parent of its own (the coarser level is
            # floor(H/2) x floor(W/2)): it takes the nearest parent's, as _up repeats edges.
            py = np.minimum(L.hy // 2, nnf[0].shape[0] - 1)
            px = np.minimum(L.hx // 2, nnf[0].shape[1] - 1)
            cy, cx = 2 * nnf[0][py, px] + L.hy % 2, 2 * nnf[1][py, px] + L.hx % 2
            ok = (nnf[0][py, px] >= 0) & L.valid(cy, cx % L.W)
            ny[ok], nx[ok] = cy[ok], cx[ok] % L.W
        nd = L.dist(L.hy, L.hx, ny, nx)
        for _ in range(iterations if lvl else max(1, iterations - 1)):
            _search(L, ny, nx, nd, rng, rounds=1)
            new = _vote(L, ny, nx, nd, colour)
            colour = colour.copy()
            colour[L.hy, L.hx] = new
            L.feat[L.hy, L.hx, :3] = new
            nd = L.dist(L.hy, L.hx, ny, nx)
        est = colour
        full_y = np.full(h.shape, -1, np.int64)
        full_x = np.zeros(h.shape, np.int64)
        full_y[L.hy, L.hx], full_x[L.hy, L.hx] = ny, nx
        nnf = (full_y, full_x) if lvl else None
    return np.asarray(est, np.float32)


register_inpainter("patchmatch", inpaint_patchmatch)
register_inpainter("diffuse", inpaint_diffuse)

__all__ = ["INPAINTERS", "inpaint", "inpaint_diffuse", "inpaint_patchmatch", "register_inpainter"]
