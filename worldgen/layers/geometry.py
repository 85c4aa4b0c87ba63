"""Occluding edges and the background surface hidden behind them, in panorama space.

A panorama holds the first surface along each ray. A viewer who walks up to ``walk_radius``
metres from the capture point sees, next to every occluding edge, background that no panorama
pixel shows. This module finds those edges and continues the background's geometry in under the
foreground, far enough to cover what such a viewer sees:

1. **Occluding edges.** Two 4-neighbour pixels whose depths differ by more than ``edge_ratio``
   (the bridging-edge ratio of docs/geometry.md, 1.1) form an edge: the nearer one is the
   foreground, the farther one (a surface or the sky) is a *seed* of the hidden background.
2. **Background planes.** Every surface pixel carries its tangent plane (normal from one-sided
   depth differences, as :mod:`worldgen.splats.init`), so the background continues as the plane
   it is: a floor stays a floor behind a sofa, a wall stays a wall behind a lamp, and a ray's
   depth on the carried plane is ``(n . P_src) / (n . r)``. Planes seen nearly edge-on (|n . r| <
   0.1) continue at the seed's own distance instead, and continued depths are clamped to
   [0.5, 3] x the seed's distance and to the farthest surface of the panorama.
3. **Propagation.** One pixel per pass (4-neighbours; longitude wraps, rows clamp at the poles),
   every pixel takes the neighbour's background whose seed is farthest, when its continued depth
   lies more than ``edge_ratio`` behind the pixel's own surface and the pixel lies within the
   angle a viewer ``walk_radius`` to the side would see past the edge:
   ``walk_radius x (1 / d_fg - 1 / d_bg)`` radians from the seed (plus two pixels), at most
   ``max_band_deg``, and the continued point is not under the ground (the median height of the
   surface seen more than 45 degrees down, less 5 cm + 5 % of the horizontal distance): a wall
   continued past a sofa must not carry on down behind the floor in front of it. The farthest seed wins, so nested occluders (a chair in front of a table in
   front of a wall) get the wall, the one surface nothing hides; except that the sky never takes
   over a surface background that reached the pixel first: around a window the sky seen above
   the horizon would otherwise spread down over the lawn and the house continued behind the
   wall. A background travels from its
   seed across one occluder only: a hidden pixel passes it on to neighbours at about its own
   depth (within ``edge_ratio``), never across another depth edge.

Everything is whole-array numpy; the number of passes is bounded by ``max_band_deg``.
"""

from __future__ import annotations

import math

import numpy as np

from ..geometry.equirect import equirect_directions


def occluding_edges(depth: np.ndarray, surface: np.ndarray, edge_ratio: float = 1.1) -> tuple[np.ndarray, np.ndarray]:
    """Both sides of every occluding edge between 4-neighbour pixels.

    Args:
        depth: ray distance, metres (+inf for sky). [H, W] float
        surface: pixels with a finite surface. [H, W] bool
        edge_ratio: an edge is a neighbour pair whose farther depth exceeds ``edge_ratio`` x the
            nearer one (sky counts as infinitely far). Default 1.1.

    Returns:
        (foreground [H, W] bool: the nearer pixel of some edge, a surface pixel;
         seeds [H, W] bool: the farther pixel of some edge, surface or sky).
    """
    d = np.where(surface, depth, np.inf)
    fg = np.zeros(d.shape, bool)
    seed = np.zeros(d.shape, bool)
    for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
        if axis == 1:
            nb = np.roll(d, shift, 1)
            nb_ok = np.ones(d.shape, bool)
        else:
            nb = np.roll(d, shift, 0)
            nb_ok = np.ones(d.shape, bool)
            nb_ok[0 if shift == 1 else -1] = False  # no wrap over the poles
        with np.errstate(invalid="ignore"):
            behind = nb_ok & surface & (nb > edge_ratio * d)  # this pixel is in front of its neighbour
        fg |= behind
        seed |= np.roll(behind, -shift, axis) if axis == 1 else _shift_rows(behind, -shift)
    return fg, seed


def _shift_rows(a: np.ndarray, shift: int) -> np.ndarray:
    """``a`` moved by ``shift`` rows (positive = down), clamped: no wrap over the poles."""
    out = np.zeros_like(a)
    if shift > 0:
        out[shift:] = a[:-shift]
    else:
        out[:shift] = a[-shift:]
    return out


def ground_height(d: np.ndarray, surface: np.ndarray, dirs: np.ndarray) -> float | None:
    """Median height of the surface seen more than 45 degrees below the horizon, metres (None if none)."""
    low = surface & (dirs[..., 1] < -math.sqrt(0.5))
    if not low.any():
        return None
    return float(np.median((dirs[..., 1] * np.where(surface, d, 0.0))[low]))


def depth_normals(dirs: np.ndarray, d: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Unit tangent-plane normals facing the capture point (worldgen.splats.init's rule). [H, W, 3] float32"""
    from ..splats.init import _depth_normals

    return _depth_normals(dirs, np.where(surface, d, 1.0).astype(np.float32), surface)


def continue_background(
    depth: np.ndarray,
    surface: np.ndarray,
    sky: np.ndarray,
    *,
    walk_radius: float = 2.0,
    edge_ratio: float = 1.1,
    max_band_deg: float = 45.0,
    nearest: bool = False,
    step_ratio: float | None = None,
    thin_px: float = 4.0,
) -> dict[str, np.ndarray]:
    """The background hidden behind the foreground, continued from the occluding edges.

    Args:
        depth: ray distance, metres (+inf for sky). [H, W] float
        surface: pixels with a finite surface. [H, W] bool
        sky: sky pixels. [H, W] bool
        walk_radius: how far from the capture point the viewer may walk, metres.
        edge_ratio: the depth ratio of an occluding edge (and how far behind the foreground a
            background must lie). Default 1.1.
        max_band_deg: widest band continued behind one edge, degrees. Default 45.
        nearest: the nearest seed wins instead of the farthest. Behind nested occluders (a trunk
            in front of a trunk in front of the ground) the farthest seed gives the surface
            nothing hides (the ground), the nearest one the middle occluder's hidden side; a
            viewer who steps aside sees the middle one first.
        step_ratio: the smallest depth ratio of an occluding edge whose hidden side is continued
            (its seeds, and how far behind the pixel's own surface a background must lie); None =
            ``edge_ratio``. The mesh passes its sheet's cut threshold (2 %): a step under
            ``edge_ratio`` that the sheet cuts (the gap between a sofa's back and the wall behind
            it, books in a shelf) opens a crack as soon as the viewer moves. ``edge_ratio`` still
            decides across which neighbours a background travels.
        thin_px: a farther seed on the same surface cannot take over a pixel whose first
            background lies at most this many pixels away (inside a thin occluder: a lamp's pole,
            a distant trunk) from more than twice that angle. Default 4. Wider occluders are not
            bound: behind a trunk 1.5 m away the bound left the far part of the trunk's hidden
            band to no seed at all, a hole 1 m aside (make demo's splats).

    Returns:
        dict with **hidden** [H, W] bool (pixels with a background behind their own surface),
        **depth** [H, W] float32 (the hidden background's ray distance; +inf where it is sky; the
        pixel's own depth elsewhere), **sky** [H, W] bool (hidden pixels whose background is
        sky), **source** [H, W] int64 (flat index of the seed pixel each hidden pixel continues;
        -1 where none), **seeds** [H, W] bool (background sides of occluding edges used by some
        hidden pixel) and **passes** (number of propagation passes run, 0-d int).
    """
    H, W = depth.shape
    surface = np.asarray(surface, bool)
    sky = np.asarray(sky, bool) & ~surface
    d = np.where(surface, depth, np.inf).astype(np.float64)
    dirs = equirect_directions(H, W).astype(np.float64)
    step_ratio = edge_ratio if step_ratio is None else step_ratio
    fg, seed = occluding_edges(d, surface, edge_ratio)
    pixel = math.pi / H
    if step_ratio < edge_ratio:
        # Steps under the edge ratio are completed only where a viewer walk_radius aside sees
        # more than a pixel past them, walk_radius x (1 / d_near - 1 / d_far): elsewhere the
        # sheet's one-cell backfill covers what opens, and a layer behind every small step of
        # far terrain (ridges kilometres away) only competes with the simplified world there
        # (the forest's capture point lost 0.3 dB).
        _, small = occluding_edges(d, surface, step_ratio)
        near = np.minimum.reduce([np.roll(d, 1, 1), np.roll(d, -1, 1), _shift_rows(d, 1), _shift_rows(d, -1)])
        near = np.where(near > 0, near, np.inf)  # _shift_rows pads with 0
        with np.errstate(divide="ignore", invalid="ignore"):
            seen = walk_radius * (1.0 / near - 1.0 / d) > pixel
        seed |= small & ~seed & seen
    seed &= surface | sky
    # Backgrounds from occluding edges must lie edge_ratio behind a pixel's own surface, those
    # from small steps step_ratio (with one threshold for both, surfaces barely behind the
    # foreground took pixels from the sky behind silhouettes: the coast's hidden sky fell 7x).
    big = occluding_edges(d, surface, edge_ratio)[1].reshape(-1)
    far = float(d[surface].max()) if surface.any() else 1.0
    ground = ground_height(d, surface, dirs)
    n = depth_normals(dirs.astype(np.float32), np.where(surface, d, 1.0), surface).astype(np.float64)
    P = dirs * np.where(surface, d, 0.0)[..., None]
    offset = np.einsum("...i,...i->...", n, P)  # n . P (< 0: normals face the capture point)
    flat_n = n.reshape(-1, 3)
    flat_off = offset.reshape(-1)
    flat_d = d.reshape(-1)
    flat_dirs = dirs.reshape(-1, 3)
    idx = np.arange(H * W).reshape(H, W)
    # State: every pixel's chosen background seed (itself for a seed, -1 for none).
    src = np.where(seed, idx, -1)
    # The priority: the seed's own distance (inf for sky), negated when the nearest seed wins.
    src_d = np.where(seed, -np.minimum(d, 1e30) if nearest else d, -np.inf)
    bg = np.where(seed, d, np.nan)
    log_d = np.log(np.where(surface, d, 1e30))
    log_ratio = math.log(edge_ratio)
    max_band = math.radians(max_band_deg)
    passes = int(math.ceil(max_band / pixel)) + 2
    ran = 0
    fresh = seed.copy()
    first_ang = np.where(seed, 0.0, np.inf)  # angle to the first background a pixel took (radians)
    flat_surface = surface.reshape(-1)
    flat_log = log_d.reshape(-1)
    for _ in range(passes):
        ran += 1
        # Updated in place (copies: src, src_d, bg stay this pass's start for ``fresh``).
        best_src, best_sd, best_bg = src.copy(), src_d.copy(), bg.copy()
        flat_src, flat_sd = src.reshape(-1), src_d.reshape(-1)
        b_src, b_sd = best_src.reshape(-1), best_sd.reshape(-1)
        # A neighbour offers something new only if its background changed in the last pass:
        # every other offer was judged before, and a pixel's own state only gets farther. So
        # only the pixels beside the last pass's changes (the propagation front, a thin line)
        # are looked at, not the whole panorama four times a pass.
        fy, fx = np.nonzero(fresh)
        changed = False
        for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
            # Pixel p takes the offer of its neighbour q: the column wraps round, the rows stop
            # at the poles (np.roll and _shift_rows).
            if axis == 1:
                qy, qx = fy, fx
                py, px = fy, (fx + shift) % W
            else:
                inside = (fy + shift >= 0) & (fy + shift < H)
                qy, qx = fy[inside], fx[inside]
                py, px = qy + shift, qx
            if not len(py):
                continue
            p = py * W + px
            q = qy * W + qx
            srt = np.argsort(p, kind="stable")  # row-major, as np.nonzero of the full grid gave them
            p, q = p[srt], q[srt]
            c_src, c_sd = flat_src[q], flat_sd[q]
            # Only pixels whose candidate seed is farther than their current one can improve, and
            # a background travels only across one occluder: from the seed itself, or from a
            # hidden neighbour at about the same depth (not from a far rim into a near box).
            same = (c_src == q) | (np.abs(flat_log[q] - flat_log[p]) < log_ratio)
            look = (c_src >= 0) & flat_surface[p] & (c_sd > b_sd[p]) & same
            if not nearest:
                # The sky does not take over a surface background that reached the pixel first:
                # through a window the sky seen above the horizon would otherwise spread, as the
                # farthest seed, down around the frame over the lawn and the house continued
                # behind the wall (the independent room at 1 m facing the window: 3.1 % of the
                # view showed the dome where the truth shows the lawn). Between the sky and a
                # surface the nearer seed in the image decides, as the horizon would.
                cur_p = b_src[p]
                look &= ~(np.isinf(c_sd) & np.isfinite(b_sd[p]) & (cur_p >= 0) & (cur_p != p))
            if not look.any():
                continue
            p, c_src, c_sd = p[look], c_src[look], c_sd[look]
            ys, xs = np.divmod(p, W)
            s = c_src
            r = dirs[ys, xs]
            own = d[ys, xs]
            sd = flat_d[s]
            with np.errstate(divide="ignore", invalid="ignore"):
                cos_n = np.einsum("ij,ij->i", flat_n[s], r)
                t = np.where(cos_n < -0.1, flat_off[s] / np.minimum(cos_n, -0.1), sd)
            t = np.clip(t, 0.5 * sd, np.minimum(3.0 * sd, far))
            t = np.where(np.isinf(sd), np.inf, t)
            ang = np.arccos(np.clip(np.einsum("ij,ij->i", flat_dirs[s], r), -1.0, 1.0))
            # A farther seed takes over a pixel's background only from about as near in the
            # image as the one it has: at most twice its angle plus two pixels. Along a thin
            # occluder (a lamp's pole, a trunk) every pixel has the background beside it, one
            # pixel away; without this a farther seed at one end (the wall continued behind the
            # ceiling at the pole's top, a doorway, far terrain) travelled the pole's whole
            # length as "the farthest" and put the background behind it metres too far, so a
            # viewer who stepped aside saw the pole's outline open where the wall is.
            # The bound is the pixel's first (nearest) background's angle, not its current one:
            # measured from the current one, seeds 3, 7, 15, 31 pixels away took over in a chain.
            # It holds only between seeds on one surface (the candidate seed lies on the current
            # seed's plane, within edge_ratio): a farther surface still takes over from afar, so
            # behind a post in front of a wider post the wall continues (nested occluders).
            cur = best_src[ys, xs]
            held = cur >= 0
            near_enough = ~held | (ang <= 2.0 * first_ang[ys, xs] + 2.0 * pixel) | (first_ang[ys, xs] > thin_px * pixel)
            ask = ~near_enough & np.isfinite(sd)
            if ask.any():
                c, q = cur[ask], s[ask]
                with np.errstate(divide="ignore", invalid="ignore"):
                    cos_c = np.einsum("ij,ij->i", flat_n[c], flat_dirs[q])
                    on_plane = np.where(cos_c < -0.1, flat_off[c] / np.minimum(cos_c, -0.1), flat_d[c])
                    same_surface = np.abs(np.log(on_plane / flat_d[q])) < log_ratio
                near_enough[np.nonzero(ask)[0][~same_surface]] = True
            if ground is not None:
                # A wall continued down meets the ground: below it the ray meets the ground
                # plane instead (behind a table's edge the right wall and the floor join at
                # their corner; before, a strip of wall continued under the floor's tolerance
                # beat the floor continued from under the table, and the two were cut apart).
                q_y = r[:, 1] * np.where(np.isinf(t), 0.0, t)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t_ground = np.where(r[:, 1] < 0, ground / r[:, 1], np.inf)
                # Only walls (|n_y| < 0.3): snapping ground-like planes too (terrain rising away
                # from the capture point) cost the street 0.5 dB and the coast 0.2 dB at 1 m.
                wall = np.abs(flat_n[s][:, 1]) < 0.3
                t = np.where(wall & np.isfinite(t) & (q_y < ground) & (t_ground < t), t_ground, t)
            with np.errstate(divide="ignore"):
                reach = walk_radius * (1.0 / own - 1.0 / t) + 2.0 * pixel
            ok = (t > np.where(big[s], edge_ratio, step_ratio) * own) & (ang <= np.minimum(reach, max_band))
            ok &= near_enough
            if ground is not None:
                # Nothing hides under the ground: a wall continued down past a floor pixel (the
                # floor in front of a sofa) would be buried, not hidden. The ground is the lower
                # of the median ground and the seed's own height: a surface seen below the ground
                # (a lake 0.45 m under the forest's grass, a sunken floor) continues as itself
                # behind the bank in front of it (the forest at 1 m had a crack along the shore).
                q_y = r[:, 1] * np.where(np.isinf(t), 0.0, t)
                horiz = np.hypot(r[:, 0], r[:, 2]) * np.where(np.isinf(t), 0.0, t)
                floor = np.minimum(ground, flat_dirs[s, 1] * np.where(np.isinf(sd), 0.0, sd))
                ok &= np.isinf(t) | (q_y >= floor - 0.05 - 0.05 * horiz)
            if not ok.any():
                continue
            ys, xs = ys[ok], xs[ok]
            best_src[ys, xs] = c_src[ok]
            best_sd[ys, xs] = c_sd[ok]
            best_bg[ys, xs] = t[ok]
            first = np.isinf(first_ang[ys, xs])
            first_ang[ys[first], xs[first]] = ang[ok][first]
            changed = True
        fresh = best_src != src
        src, src_d, bg = best_src, best_sd, best_bg
        if not changed:
            break
    hidden = (src >= 0) & (src != idx)
    out_d = np.where(hidden, bg, d).astype(np.float32)
    hidden_sky = hidden & np.isinf(out_d)
    used = np.zeros(H * W, bool)
    used[src[hidden]] = True
    return {
        "hidden": hidden,
        "depth": out_d,
        "sky": hidden_sky,
        "source": np.where(hidden, src, -1),
        "seeds": used.reshape(H, W) & seed,
        "passes": np.asarray(ran),
        "foreground_edges": fg,
    }


def foreground_backs(
    depth: np.ndarray,
    surface: np.ndarray,
    background: np.ndarray | None = None,
    *,
    walk_radius: float = 2.0,
    edge_ratio: float = 1.1,
    max_ratio: float = 2.0,
) -> dict[str, np.ndarray]:
    """The foreground's own hidden side behind its left and right silhouettes (a thickness prior).

    A viewer who steps aside looks around the side of a near object: a tree's canopy, a trunk,
    a house's corner, a sofa's arm. That side lies behind the object's front in the panorama
    (its pixels show the front), so neither the world nor the background continued behind the
    object has it, and the viewer saw the sky dome there (the forest's worst views at 1-2 m).

    The prior: every horizontal slice of an object is as deep as it is wide, its back the
    mirror of its front about the silhouette's depth. In a row, the pixels of one surface run
    (no step over ``edge_ratio`` between them) next to a silhouette (its neighbour beyond the
    run lies more than ``edge_ratio`` farther, or is sky) get a back at ``2 d_s - d`` (``d_s``
    the silhouette's depth, ``d`` the pixel's own): a round trunk or canopy's back within a few
    per cent, meeting the front at the silhouette, so nothing sticks out and nothing is
    stretched to the background. Only horizontal silhouettes (left and right sides): objects
    stand upright, and a table top's or a sofa back's top edge has a flat top behind it, not a
    mirrored one. A pixel takes the nearer of its run's two silhouettes, and only where a viewer
    ``walk_radius`` aside sees its back past the silhouette: ``walk_radius x (1 / d_s - 1 / b)``
    radians of the row from it, plus two pixels (the same reach as continue_background). The
    back stays in front of the background continued behind the object (``background``) and of
    the farthest surface, within ``max_ratio`` x the pixel's own depth, and above the ground;
    only silhouettes within 10 x ``walk_radius`` get one.

    Args:
        depth: ray distance, metres (+inf for sky). [H, W] float
        surface: pixels with a finite surface. [H, W] bool
        background: the hidden background's distance behind each pixel (+inf for sky or none),
            e.g. :func:`continue_background`'s ``depth`` where ``hidden``. [H, W] float or None
        walk_radius: metres.
        edge_ratio: depth ratio of an occluding edge. Default 1.1.
        max_ratio: the back lies at most this many times the pixel's own depth. Default 2.

    Returns:
        dict with **hidden** [H, W] bool (pixels with a back; silhouette pixels included, where
        the back meets the front, and the sky pixel just outside each such silhouette, its fringe)
        and **depth** [H, W] float32 (the back's ray distance where ``hidden``: the silhouette's
        depth on the fringe; the pixel's own depth elsewhere).
    """
    H, W = depth.shape
    surface = np.asarray(surface, bool)
    d = np.where(surface, depth, np.inf).astype(np.float64)
    dirs = equirect_directions(H, W).astype(np.float64)
    cols = np.arange(W)
    # Steps along each row (between column x and x + 1, longitude wraps): over edge_ratio either way.
    nxt = np.roll(d, -1, 1)
    with np.errstate(invalid="ignore"):
        brk = ~((nxt <= edge_ratio * d) & (d <= edge_ratio * nxt))  # a break after column x
        right_sil = surface & (nxt > edge_ratio * d)  # x is a right silhouette (its right neighbour is farther)
        left_sil = surface & (np.roll(d, 1, 1) > edge_ratio * d)  # x is a left silhouette
    # Each pixel's run: its first column (after the last break before it) and its last one,
    # found on the row doubled so runs across the seam wrap (runs longer than a turn do not end).
    brk2 = np.concatenate([brk, brk], 1)
    idx2 = np.arange(2 * W)[None, :]
    start_r = np.maximum.accumulate(np.where(np.roll(brk2, 1, 1), idx2, -1), 1)[:, W:]
    start = np.where(start_r >= 0, start_r % W, -1)
    stop_r = np.minimum.accumulate(np.where(brk2, idx2, 4 * W)[:, ::-1], 1)[:, ::-1][:, :W]
    stop = np.where(stop_r < 2 * W, stop_r % W, -1)
    rows = np.arange(H)[:, None]
    pixel = math.pi / H
    row_scale = (2 * math.pi / W) * np.cos(np.arcsin(np.clip(dirs[..., 1], -1, 1)))  # radians per column
    best_b = np.full((H, W), np.nan)
    best_n = np.full((H, W), np.inf)
    for sil_col, is_sil in ((start, left_sil), (stop, right_sil)):
        ok = (sil_col >= 0) & surface
        sc = np.where(ok, sil_col, 0)
        ok &= is_sil[rows, sc]
        ds = d[rows, sc]
        n = np.abs(cols[None, :] - sc)
        n = np.minimum(n, W - n)  # columns to the silhouette
        with np.errstate(invalid="ignore"):
            b = 2.0 * ds - d
        with np.errstate(invalid="ignore", divide="ignore"):
            reach = walk_radius * (1.0 / ds - 1.0 / b) + 2.0 * pixel
            ok &= ((b > d) | (n == 0)) & (n * row_scale <= reach) & (ds <= max_ratio * d)
            # Near objects only: farther than 10 x walk_radius a side turns by under 6 degrees
            # and the world there is simplified up to ~15 % off its pixels' depths, so a back
            # just behind the front won the depth test from the capture point (forest: far
            # shore and ridges, floaters at the capture point 0.15 -> 0.21 % of the view).
            ok &= ds <= 10.0 * walk_radius
        take = ok & (n < best_n)
        best_b = np.where(take, np.where(n == 0, d, b), best_b)
        best_n = np.where(take, n, best_n)
    hidden = np.isfinite(best_n)
    b = np.where(hidden, best_b, d)
    far = float(d[surface].max()) if surface.any() else 1.0
    limit = np.full((H, W), far)
    if background is not None:
        limit = np.minimum(limit, np.where(np.isfinite(background), background / 1.01, np.inf))
    b = np.where(hidden, np.minimum(b, np.maximum(limit, d)), b)
    ground = ground_height(d, surface, dirs)
    if ground is not None:
        # Nothing under the ground (continue_background's rule): the foot of a trunk or the
        # ground's own far edge would otherwise get a back buried below the grass.
        q_y = dirs[..., 1] * np.where(hidden, b, 0.0)
        horiz = np.hypot(dirs[..., 0], dirs[..., 2]) * np.where(hidden, b, 0.0)
        hidden &= q_y >= ground - 0.05 - 0.05 * horiz
    # A back only where it has some depth behind its front, or joins one that has (silhouettes).
    deep = hidden & (b > d * 1.005)
    near_deep = deep | np.roll(deep, 1, 1) | np.roll(deep, -1, 1)
    hidden &= near_deep
    # The fringe (the sheet's own rule at silhouettes against the sky): the back reaches one
    # pixel past its silhouette into the sky, on the outer neighbour's ray at the silhouette's
    # depth. The silhouette pixel's centre lies up to a pixel inside the true outline, so a back
    # that ends there leaves a sliver of the side open (round trunks 1 m aside at 256 columns:
    # holes 1.9 -> 1.2 % of the view with it). From the capture point it lies behind the world's
    # own fringe. Not against a farther surface: there nothing of the world covers that ray at
    # the silhouette's depth, and the fringe showed from the capture point in front of the wall
    # behind a sofa (the interior: 0.14 % of the capture point's view rendered too near).
    out_d = np.where(hidden, b, d)
    for shift, sil in ((1, right_sil), (-1, left_sil)):
        edge = hidden & sil
        outer = np.roll(edge, shift, 1) & ~hidden & ~surface
        out_d = np.where(outer, np.roll(d, shift, 1), out_d)
        hidden = hidden | outer
    return {"hidden": hidden, "depth": out_d.astype(np.float32)}


__all__ = ["continue_background", "depth_normals", "foreground_backs", "ground_height", "occluding_edges"]
