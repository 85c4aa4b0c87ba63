"""Inpainting the hidden background's colour in panorama space, with inpainters registered by name.

An inpainter fills the ``hole`` pixels of a panorama-space image from the rest of it:
``fn(image [H, W, 3] float32 in [0, 1], hole [H, W] bool, guide [H, W] float32 | None, seed,
*, classes=None) -> [H, W, 3] float32`` (pixels outside the hole are returned unchanged).
``guide`` is a structure channel known everywhere, including inside the hole (the layers use
log-depth of the continued background), so a patch behind a sofa is matched with patches of the
floor at the same distance, not with the sofa. ``classes`` ([H, W] small ints, known everywhere,
or None) is a hard constraint on the sources: a hole pixel takes colour only from known pixels of
its own class (the layers pass sky / surface: hidden sky is painted from the sky, hidden ground
from surfaces, never from each other). Inpainters registered from outside receive ``classes=``
only when it is given. Longitude wraps; rows clamp at the poles.

Registered:

- ``patchmatch`` (default, no weights): coarse-to-fine PatchMatch with patch voting, the
  completion scheme of Wexler, Shechtman & Irani (2007) with Barnes et al.'s (2009) randomised
  nearest-neighbour search. Every hole pixel keeps a nearest-neighbour field entry, the centre
  of a source patch lying wholly outside the hole; per iteration each entry tries its four
  neighbours' entries shifted back by the step (at jumps of 1 and 4 pixels, all pixels at once,
  as jump flooding does) and random candidates in shrinking windows, keeps the one with the
  smallest patch distance (colour plus ``guide_weight`` x guide, squared, over 5x5 patches), then
  every hole pixel becomes the mean of what the overlapping patches' sources say it is. Textures
  and edges continue from the surroundings instead of blurring. With ``classes``, the class is a
  feature of the patch distance too (one-hot, ``class_weight``), a source centre must be of its
  target's class, and a pixel's vote counts only the overlapping sources' pixels of its own class
  (where none is, it keeps the class-bound diffusion estimate): the class boundary inside the hole
  (the horizon behind a rock) is continued where the classes put it, and no hidden ground pixel is
  painted from the sky above it.
- ``diffuse``: harmonic fill (repeated 4-neighbour averaging, coarse to fine). Smooth; a baseline.
  With ``classes``, a pixel averages only its neighbours of its own class.

- ``diffusion`` (worldgen/layers/diffusion.py): the ``fill`` model role's diffusers inpainting
  pipeline refines a patchmatch pre-fill; needs ``model=`` (a pipeline folder).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import InputError

Inpainter = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", int], np.ndarray]
INPAINTERS: dict[str, Inpainter] = {}


def register_inpainter(name: str, fn: Inpainter) -> None:
    """Make ``fn`` available as ``inpaint(name, ...)`` (and ``--set mesh.inpaint=NAME``)."""
    INPAINTERS[name] = fn


def inpaint(
    name: str,
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    classes: np.ndarray | None = None,
    anchor: np.ndarray | None = None,
    **options,
):
    """Fill ``hole`` of ``image`` with the inpainter registered as ``name``.

    Args:
        name: a registered inpainter ("patchmatch", "diffuse").
        image: colour in [0, 1]. [H, W, 3] float
        hole: pixels to fill. [H, W] bool
        guide: structure channel known everywhere (e.g. log-depth), or None. [H, W] float
        seed: random seed (same inputs and seed give the same result).
        classes: source classes known everywhere (e.g. 0 surface, 1 sky), or None: a hole pixel
            is filled only from known pixels of its own class. A hole pixel whose class no known
            pixel has is filled from any class (nothing else could fill it). [H, W] int
        anchor: for each hole pixel, the flat index (y * W + x) of the visible pixel its content
            continues (the background side of the edge that hides it), -1 for none, or None:
            sources near the anchor are preferred (patchmatch's locality). [H, W] int
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
    if classes is not None:
        classes = np.asarray(classes)
        integer = classes.dtype == bool or np.issubdtype(classes.dtype, np.integer)
        if classes.shape != hole.shape or not integer or (classes < 0).any():
            raise InputError(f"inpainting classes must be [H, W] integers >= 0 like the hole; got {classes.shape}")
        classes = _sourced_classes(classes.astype(np.int64), hole)
        options = {**options, "classes": classes}
    if anchor is not None:
        anchor = np.asarray(anchor)
        if anchor.shape != hole.shape or not np.issubdtype(anchor.dtype, np.integer) or (anchor >= hole.size).any():
            raise InputError(f"inpainting anchors must be [H, W] flat pixel indices like the hole; got {anchor.shape}")
        options = {**options, "anchor": anchor}
    # An inpainter registered from outside that knows neither keyword is called without them.
    fn = INPAINTERS[name]
    options = {k: v for k, v in options.items() if k not in ("classes", "anchor") or _accepts(fn, k)}
    out = INPAINTERS[name](image, hole, None if guide is None else np.asarray(guide, np.float32), seed, **options)
    out = np.where(hole[..., None], out, image).astype(np.float32)
    return out


def _accepts(fn: Callable, keyword: str) -> bool:
    """Whether ``fn`` takes ``keyword`` (by name or through ``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _sourced_classes(classes: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``classes`` with every hole pixel whose class no known pixel has moved into one wildcard
    class that every known pixel also belongs to: compacted to 0..K-1 for the known classes, K for
    the wildcard (no known pixel has it, so such pixels are compared with every class)."""
    known = np.unique(classes[~hole])
    lut = np.full(int(classes.max()) + 1, len(known), np.int64)
    lut[known] = np.arange(len(known))
    return lut[classes]


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


def _shift4(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``a`` seen from each pixel's 4 neighbours: up, down, left, right (longitude wraps, rows clamp)."""
    return (
        np.concatenate([a[:1], a[:-1]], 0),
        np.concatenate([a[1:], a[-1:]], 0),
        np.roll(a, 1, 1),
        np.roll(a, -1, 1),
    )


def _neighbour_mean(img: np.ndarray) -> np.ndarray:
    """Mean of the 4 neighbours (longitude wraps, rows clamp)."""
    return 0.25 * sum(_shift4(img))


def _diffuse_level(img: np.ndarray, hole: np.ndarray, iterations: int, classes: np.ndarray | None = None) -> np.ndarray:
    """``iterations`` Jacobi steps of 4-neighbour averaging inside ``hole``; with ``classes``, a
    hole pixel averages only its neighbours of its own class (one with none keeps its value)."""
    if classes is None:
        out = img.copy()
        for _ in range(iterations):
            out = np.where(hole[..., None], _neighbour_mean(out), img)
        return out
    # Only the hole pixels change: gather their neighbours (the image can be 100x the hole).
    H, W = hole.shape
    hy, hx = np.nonzero(hole)
    idx = hy * W + hx
    nb = np.stack([np.maximum(hy - 1, 0) * W + hx, np.minimum(hy + 1, H - 1) * W + hx, idx - hx + (hx - 1) % W], 1)
    nb = np.concatenate([nb, (idx - hx + (hx + 1) % W)[:, None]], 1)  # [n, 4]: up, down, left, right
    flat_c = classes.reshape(-1)
    same = flat_c[nb] == flat_c[idx][:, None]
    has = same.any(1)
    w = (same / np.maximum(same.sum(1), 1)[:, None]).astype(np.float32)[has]
    nb, idx = nb[has], idx[has]
    out = img.reshape(H * W, -1).copy()
    for _ in range(iterations):
        out[idx] = np.einsum("nk,nkc->nc", w, out[nb])
    return out.reshape(img.shape)


def _class_down(classes: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Half-size class map: the most common class among a block's known children (the pixel's
    colour is their mean), among all its children where none is known; ties to the lower class."""
    H, W = known.shape
    h, w = H // 2, W // 2
    c = classes[: 2 * h, : 2 * w].reshape(h, 2, w, 2)
    k = known[: 2 * h, : 2 * w].reshape(h, 2, w, 2)
    n = int(classes.max()) + 1
    votes = np.stack([((c == j) & k).sum((1, 3)) for j in range(n)], -1)
    votes_all = np.stack([(c == j).sum((1, 3)) for j in range(n)], -1)
    return np.where(k.any((1, 3)), votes.argmax(-1), votes_all.argmax(-1))


def _pyramid(img: np.ndarray, hole: np.ndarray, min_size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(image, hole)] from full size down; coarse holes are pixels with no known child."""
    levels = [(img, hole)]
    while min(levels[-1][1].shape) >= 2 * min_size and levels[-1][1].any():
        x, h = levels[-1]
        xs, known = _down(x, ~h)
        levels.append((xs, ~known))
    return levels


def _class_pyramid(classes: np.ndarray | None, levels: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """The class map of every level of ``levels`` (None throughout without classes)."""
    if classes is None:
        return [None] * len(levels)
    out = [classes]
    for _, h in levels[:-1]:
        out.append(_class_down(out[-1], ~h))
    return out


def _class_means(x: np.ndarray, hole: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """A start for the coarsest level's diffusion: every hole pixel the mean known colour of its
    class (of all known pixels where its class has none). [H, W, 3]"""
    known = ~hole
    out = np.where(hole[..., None], x[known].mean(0) if known.any() else 0.5, x)
    if classes is None:
        return out
    for k in np.unique(classes[hole]):
        src = known & (classes == k)
        if src.any():
            out[hole & (classes == k)] = x[src].mean(0)
    return out


def inpaint_diffuse(
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    *,
    classes: np.ndarray | None = None,
    anchor: np.ndarray | None = None,
) -> np.ndarray:
    """Harmonic fill, coarse to fine, within ``classes`` when given (guide, seed and anchor unused). [H, W, 3] float32"""
    levels = _pyramid(image, hole)
    cls = _class_pyramid(classes, levels)
    x, h = levels[-1]
    est = _diffuse_level(_class_means(x, h, cls[-1]), h, 64, cls[-1])
    for lvl in range(len(levels) - 2, -1, -1):
        x, h = levels[lvl]
        est = _diffuse_level(np.where(h[..., None], _up(est, h.shape), x), h, 16, cls[lvl])
    return est.astype(np.float32)


# --------------------------------------------------------------------------------------------
# PatchMatch completion
# --------------------------------------------------------------------------------------------

_HALF = 2  # 5x5 patches


class _Level:
    """One pyramid level's arrays and patch-distance machinery."""

    def __init__(
        self,
        feat: np.ndarray,
        hole: np.ndarray,
        classes: np.ndarray | None = None,
        anchor: tuple[np.ndarray, np.ndarray] | None = None,
        locality: float = 0.0,
        radius: float = 1.0,
        reach: float = 4.0,
    ):
        self.H, self.W = hole.shape
        self.feat = feat  # [H, W, C] colour + weighted guide (+ weighted class one-hot) (hole: current estimate)
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
        # Classes: a hole pixel of class >= ``wild`` has no known pixel of its class and takes any.
        self.classes = classes
        if classes is not None:
            self.wild = int(classes[~hole].max()) + 1 if (~hole).any() else 0
            self.hcls = classes[self.hy, self.hx]
        # Locality: the hole pixels' anchors (the visible pixel their background continues) and
        # per hole pixel the scale of a source centre's distance from its anchor: the pixel's own
        # distance from the anchor plus ``radius``. Sources within ``reach`` scales cost nothing,
        # farther ones ``locality`` x the excess squared: a pixel one step into the hole takes its
        # sources next to its edge, one deep inside a wide hole from as far away as it lies itself
        # (and a few times more).
        self.locality = locality if anchor is not None else 0.0
        self.reach = reach
        if self.locality:
            self.ay = anchor[0][self.hy, self.hx]
            self.ax = anchor[1][self.hy, self.hx]
            own = np.hypot(self.hy - self.ay, _wrapped(self.hx - self.ax, self.W))
            self.loc_s = (1.0 / (own + radius)).astype(np.float32)

    def dist(self, sy, sx, i=None) -> np.ndarray:
        """Distances between the patches at the hole pixels ``i`` (None: all) and at sources (sy, sx):
        the sum of squared feature differences, plus the locality term. [n]"""
        H, W = self.H, self.W
        ty, tx = (self.hy, self.hx) if i is None else (self.hy[i], self.hx[i])
        out = np.zeros(len(ty), np.float32)
        if self.locality:
            ay, ax, sc = (self.ay, self.ax, self.loc_s) if i is None else (self.ay[i], self.ax[i], self.loc_s[i])
            far = np.hypot(sy - ay, _wrapped(sx - ax, W)).astype(np.float32) * sc - self.reach
            out += self.locality * np.maximum(far, 0.0) ** 2
        for dy in range(-_HALF, _HALF + 1):
            a_y = np.clip(ty + dy, 0, H - 1)
            b_y = np.clip(sy + dy, 0, H - 1)
            for dx in range(-_HALF, _HALF + 1):
                diff = self.feat[a_y, (tx + dx) % W] - self.feat[b_y, (sx + dx) % W]
                out += np.einsum("ij,ij->i", diff, diff)
        return out

    def same(self, cls_src: np.ndarray, cls_tgt: np.ndarray) -> np.ndarray:
        """Whether a source pixel of class ``cls_src`` may colour a target of ``cls_tgt``. [n] bool"""
        return (cls_src == cls_tgt) | (cls_tgt >= self.wild)

    def valid(self, sy, sx) -> np.ndarray:
        """Whether (sy, sx) ([n], one per hole pixel) is a valid source centre for that pixel (of its class)."""
        ok = (sy >= 0) & (sy < self.H)
        res = np.zeros(len(sy), bool)
        res[ok] = self.src_ok[sy[ok], sx[ok] % self.W]
        if self.classes is not None:
            res[ok] &= self.same(self.classes[sy[ok], sx[ok] % self.W], self.hcls[ok])
        return res


def _wrapped(dx: np.ndarray, W: int) -> np.ndarray:
    """|dx| in columns with longitude wrapping (at most W / 2)."""
    dx = np.abs(dx)
    return np.minimum(dx, W - dx)


def _anchor_pyramid(anchor: np.ndarray | None, shape: tuple[int, int], n: int) -> list:
    """(rows, columns) of every pixel's anchor at each of ``n`` levels (None throughout without anchors).

    A coarse pixel takes its top-left child's anchor, halved per level.
    """
    if anchor is None:
        return [None] * n
    H, W = shape
    a = np.asarray(anchor, np.int64)
    yy, xx = np.divmod(np.where(a >= 0, a, np.arange(H * W).reshape(H, W)), W)
    out = []
    for lvl in range(n):
        f = 2**lvl
        h, w = H // f, W // f
        out.append((yy[::f, ::f][:h, :w] // f, xx[::f, ::f][:h, :w] // f))
    return out


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
        dd = L.dist(cy[i], cx[i], i)
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


def _vote(
    L: _Level, ny: np.ndarray, nx: np.ndarray, nd: np.ndarray, colour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each hole pixel = weighted mean of the colours its overlapping patches' sources give it.

    With classes, only source pixels of the hole pixel's own class count. Returns (colour [n, 3],
    voted [n] bool: whether any source counted; the others keep their colour)."""
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
            has = np.nonzero(k >= 0)[0]
            kk = k[has]
            sy = np.clip(ny[kk] + dy, 0, H - 1)
            sx = (nx[kk] + dx) % W
            w = w_all[kk]
            if L.classes is not None:
                w = w * L.same(L.classes[sy, sx], L.hcls[has])
            acc[has] += colour[sy, sx] * w[:, None]
            wsum[has] += w
    voted = wsum > 0
    out = colour[ty, tx].astype(np.float64)
    out[voted] = acc[voted] / wsum[voted][:, None]
    return out.astype(np.float32), voted


def inpaint_patchmatch(
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    *,
    guide_weight: float = 1.0,
    iterations: int = 3,
    classes: np.ndarray | None = None,
    class_weight: float = 2.0,
    anchor: np.ndarray | None = None,
    locality: float = 1.0,
    locality_radius: float = 1.0 / 128,
    locality_reach: float = 4.0,
) -> np.ndarray:
    """Coarse-to-fine PatchMatch completion (see the module docstring). [H, W, 3] float32

    ``classes`` ([H, W] ints, known everywhere) binds every hole pixel to sources of its class;
    ``class_weight`` weighs the class (one-hot) in the patch distance. ``anchor`` ([H, W] flat
    pixel indices, -1 = the pixel itself) adds ``locality`` x max(0, distance from a source centre
    to the hole pixel's anchor / (the hole pixel's own distance from it + ``locality_radius`` x the
    level's rows) - ``locality_reach``)^2 to the patch distance.
    """
    rng = np.random.default_rng(seed)
    g = np.zeros(hole.shape, np.float32) if guide is None else guide.astype(np.float32)
    img = np.concatenate([image.astype(np.float32), guide_weight * g[..., None]], -1)
    levels = _pyramid(img, hole)
    cls = _class_pyramid(None if classes is None else np.asarray(classes, np.int64), levels)
    # The guide is known inside the hole: its pyramid averages every child, not only known ones.
    guides = [g]
    for _ in levels[1:]:
        guides.append(_down(guides[-1][..., None], np.ones(guides[-1].shape, bool))[0][..., 0])
    anchors = _anchor_pyramid(anchor, hole.shape, len(levels))
    x, h = levels[-1]
    est = inpaint_diffuse(x[..., :3], h, classes=cls[-1]) if h.any() and (~h).any() else x[..., :3]
    nnf = None
    for lvl in range(len(levels) - 1, -1, -1):
        x, h = levels[lvl]
        colour = np.where(h[..., None], _up(est, h.shape) if est.shape[:2] != h.shape else est, x[..., :3])
        if not h.any():
            est = colour
            nnf = None
            continue
        c = cls[lvl]
        parts = [colour, guide_weight * guides[lvl][..., None]]
        if c is not None:
            # The coarser level's estimate crossed class borders where a coarse pixel's class was
            # its children's majority: the start is re-diffused within the classes, so a pixel no
            # source of its class votes for keeps a colour of its class.
            colour = _diffuse_level(colour, h, 16, c)
            n_cls = int(c.max()) + 1
            if n_cls <= 2:  # one channel costs a mismatch what the one-hot pair would: 2 x weight^2
                onehot = (math.sqrt(2.0) * class_weight * c[..., None]).astype(np.float32)
            else:
                onehot = class_weight * (c[..., None] == np.arange(n_cls)).astype(np.float32)
            parts = [colour, parts[1], onehot]
        feat = np.concatenate(parts, -1).astype(np.float32)
        L = _Level(feat, h, c, anchors[lvl], locality, max(locality_radius * h.shape[0], 1.0), locality_reach)
        if not L.src_ok.any():  # a level too small to hold any whole source patch: keep the estimate
            est = colour
            continue
        n = len(L.hy)
        # Initial field: the coarser level's, doubled, where it maps to a valid source; else random
        # (among the sources of the pixel's class where there are any).
        sy_all, sx_all = np.nonzero(L.src_ok)
        pick = rng.integers(0, len(sy_all), n)
        ny, nx = sy_all[pick].copy(), sx_all[pick].copy()
        if c is not None:
            for k in np.unique(L.hcls):
                m = L.src_ok & (c == k)
                tk = np.nonzero(L.hcls == k)[0]
                if k < L.wild and m.any():
                    ky, kx = np.nonzero(m)
                    pk = rng.integers(0, len(ky), len(tk))
                    ny[tk], nx[tk] = ky[pk], kx[pk]
        if nnf is not None:
            # An odd-sized level's last row/column has no parent of its own (the coarser level is
            # floor(H/2) x floor(W/2)): it takes the nearest parent's, as _up repeats edges.
            py = np.minimum(L.hy // 2, nnf[0].shape[0] - 1)
            px = np.minimum(L.hx // 2, nnf[0].shape[1] - 1)
            cy, cx = 2 * nnf[0][py, px] + L.hy % 2, 2 * nnf[1][py, px] + L.hx % 2
            ok = (nnf[0][py, px] >= 0) & L.valid(cy, cx % L.W)
            ny[ok], nx[ok] = cy[ok], cx[ok] % L.W
        nd = L.dist(ny, nx)
        for _ in range(iterations if lvl else max(1, iterations - 1)):
            _search(L, ny, nx, nd, rng, rounds=1)
            new, _voted = _vote(L, ny, nx, nd, colour)
            colour = colour.copy()
            colour[L.hy, L.hx] = new
            L.feat[L.hy, L.hx, :3] = new
            nd = L.dist(ny, nx)
        est = colour
        full_y = np.full(h.shape, -1, np.int64)
        full_x = np.zeros(h.shape, np.int64)
        full_y[L.hy, L.hx], full_x[L.hy, L.hx] = ny, nx
        nnf = (full_y, full_x) if lvl else None
    return np.asarray(est, np.float32)


register_inpainter("patchmatch", inpaint_patchmatch)
register_inpainter("diffuse", inpaint_diffuse)

__all__ = ["INPAINTERS", "inpaint", "inpaint_diffuse", "inpaint_patchmatch", "register_inpainter"]
