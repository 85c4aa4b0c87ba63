"""The ``sheet`` extractor: an RGB-D panorama triangulated on its own pixel grid.

What it does, in order (all vectorised):

1. Sample the depth on a grid of pixel centres (every ``stride``-th pixel so at most
   ``grid_width`` columns), plus the skipped rows and columns where the subsampled grid's chords
   would leave the surface or its steps would be steeper than the bridge test (``grid_lines``);
   each vertex sits on its pixel's own ray at its depth. Sky vertices next to surface get the
   neighbouring depth half a pixel short of their sky pixel (the fringe), so every surface pixel
   is covered.
2. Close the sphere: a vertex column on the ±180° seam (where the chord between the last and the
   first column crosses the seam half-plane, exact for planes), duplicated for u = 0 and u = 1, and
   a vertex on each pole (median height of the nearest row, exact for a flat floor or ceiling),
   one copy per column so every cap triangle has its own u.
3. Cut depth discontinuities. An edge is cut when its relative depth jump is large *and* out of
   line with its neighbours along the same grid line (a spike in the second difference of
   log-depth: smooth ground at grazing angles changes fast but steadily, a step does not; a
   tighter spike test applies within ``grazing_soft_deg`` of the ray), when it runs within
   ``grazing_deg`` of its ray (a rubber sheet, including blurred predicted edges), or when it
   fails the issue's bridge test (ends < 2 pixels apart, depths > 10 % apart).
   Each quad is split along the diagonal with the smaller depth ratio so the split follows the
   surface; a triangle survives when both its grid edges survive and its diagonal passes.
4. Backfill: every cut triangle is re-added with its near corners pushed back to the depth of
   its far corners, so the far surface continues one cell behind the occluder. Seen from the
   capture point every ray still hits geometry; from a step away the background has no crack.
   With ``skirt`` (the layered mesh's default) the foreground also reaches out to its
   silhouette pixels' edges at its own depth and the backfill carries the background's colour
   (:func:`_skirt_backfill`), so no outline of the foreground is left on the background.
5. Simplify to the triangle budget with meshoptimizer (kept vertices are input vertices; borders
   locked so silhouettes, seam and caps stay on their rays; ends of near-steep edges locked so no
   collapse makes a bridge; texture coordinates and texture colour in the error, so triangles
   stay small where the capture point sees detail), recompute UVs from vertex
   directions (the panorama is the texture) and normals.

The sky becomes a separate dome part (same grid code at low resolution, constant radius, only
cells near sky pixels) and a collision part is simplified from the world geometry.
Faces are counter-clockwise seen from the capture point: their normals face the viewer.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from .. import _detmath as dm
from .._check import check_rgbd
from ..errors import InputError
from ..stages.photo import backdrop_mask
from ..types import DepthMap, Mesh, MeshScene, Panorama, SemanticLayers
from .collision import collision_from_grid
from .simplify import compact, simplify, vertex_normals
from .texture import equirect_uvs, panorama_texture

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SheetConfig:
    """Options of the ``sheet`` extractor.

    Args:
        max_triangles: triangle budget of the "world" part after simplification (default 300000;
            0 keeps the full grid).
        grid_width: most vertex columns of the grid; wider panoramas are sampled every
            ceil(W / grid_width)-th pixel (default 1024: a 2048-wide panorama gives a 1M-triangle
            grid before simplification).
        jump_min: smallest relative depth jump (log ratio) between neighbours that can be a
            discontinuity (default 0.02 = 2 %).
        spike: an edge whose log-depth step differs from the mean of its two neighbours' steps
            by more than ``spike`` x its own step is a discontinuity (default 0.6).
        grazing_deg: an edge within this angle of its ray is always cut, degrees (default 1.0).
        grazing_soft_deg: an edge within this angle of its ray is cut on a weaker spike,
            ``spike_grazing``: far facades seen edge-on change depth fast but steadily, and a gap
            between two of them is only a slightly bigger step (default 4.0).
        spike_grazing: the spike threshold inside ``grazing_soft_deg`` (default 0.15).
        backdrop_factor: edges whose ends both lie farther than this x the 95th percentile of
            depth are never cut (default 0 = cut everywhere). Far terrain at grazing angles
            is sampled hundreds of metres apart per row, so cutting it turns a smooth
            chord into a staircase (3 raises far-field F-score but leaves far ridges bridged).
        backfill: continue far surfaces one cell behind cut edges (default True).
        skirt: with the backfill, the foreground reaches out to its silhouette pixels' outer
            edges at its own depth (a "skirt" in front of the backfill, textured as the world), and
            the backfill carries the background's colour (:func:`_skirt_backfill`; default
            False, the layered mesh's default is True). The world's vertices sit on pixel
            centres, so without it the outer half of every silhouette pixel is covered by the
            backfill at the background's depth, textured by direction in the foreground's
            colour: seen from a step aside, a one-pixel copy of every thin object's outline on
            the wall behind it.
        steep_ratio, steep_pixels: an edge whose ends are less than ``steep_pixels`` pixels of
            ray angle apart and whose depths differ by more than ``steep_ratio`` is cut (the
            issue's definition of a bridging edge; defaults 1.1 and 2.0; steep_ratio 0 = off).
            Far ground seen within ~2 degrees of edge-on falls under it and becomes a stack of
            backfilled steps facing the capture point.
        fringe: extend the surface one grid cell into the sky at its silhouettes, on the sky
            vertices' own rays at the nearest neighbouring depth, so surface pixels between grid
            lines are covered (default True; without it a subsampled grid leaves silhouette
            pixels uncovered).
        refine_tolerance: a subsampled grid adds the skipped pixel row (column) between two of
            its lines where that row's surface points lie farther than this x the scene radius
            (95th percentile of depth) from the chord between their neighbours above and below
            (left and right), at ``refine_min_pixels`` or more pixels of the row (default 0.0025;
            0 = uniform grid). Far terrain seen at grazing angles and curved silhouettes get
            full-resolution rows and columns; flat or smoothly curved surfaces keep the stride.
        refine_min_pixels: see ``refine_tolerance``; counted on every other pixel of the row
            (default 4).
        refine_budget: the refined grid has at most this x the vertices of the uniform one;
            lines with the largest share of such pixels go first (default 1.3: it bounds the
            build and simplification time, ~1.2M triangles before simplification at 2048x1024).
        texture_width: widest texture; the panorama is area-averaged down to it (default 4096).
        sky: add the "sky" dome part (default True).
        sky_radius: dome radius, metres; 0 = 1.5 x the farthest finite depth, at least 10 m.
        sky_grid_width: columns of the dome grid (default 256).
        collision_triangles: budget of the "collision" part; 0 = no collision part (default 20000).
        aggressiveness: fast-simplification's aggressiveness (default 7; "quadric" only).
        simplifier: "meshopt" (default: meshoptimizer keeps every vertex on its pixel ray and
            simplifies silhouettes along themselves) or "quadric" (fast-simplification with
            silhouettes, seam and caps locked; stalls above the budget on busy scenes).
        uv_weight: weight of the panorama coordinates (u, v in [0, 1]) in meshoptimizer's
            error, against positions scaled to the mesh extent (default 30). A large flat
            triangle interpolates its texture coordinates linearly while the true mapping is
            the ray direction, so without this term far ground and walls render several
            texels off (city street PSNR 37 dB at 0, 46 dB at 30, geometry unchanged).
        colour_weight: weight of each vertex's texture colour (sRGB in [0, 1], three channels)
            in meshoptimizer's error, next to ``uv_weight`` (default 30; "meshopt" only). The
            texture-coordinate error of a large triangle costs nothing on a flat-coloured wall
            and several dB where the texture is busy (far ground and foliage just below the
            horizon); the colour term keeps triangles small where the texture varies, so the
            budget goes where the capture point sees detail. Forest 2048x1024 from the capture
            point: 55.15 -> 58.97 dB at 300k triangles, and 262k triangles now read 58.89 dB
            (53.73 without it); F-score unchanged. 0 = texture coordinates only.
        colour_max_ratio: the colour term applies only while the grid is simplified by at most
            this factor (default 6). Further, almost every triangle spans a colour change, the
            colour error swamps the geometry and texture-coordinate terms, and the mesh gets
            worse: the analytic room at 128 rows, 65.8k -> 6k triangles (11:1), read 35.8 dB
            and F 0.995 without it, 26.8 dB and F 0.982 with it. Measured gains at 2.6-4.9:1
            (the presets at 1024 and 2048 columns).
    """

    max_triangles: int = 300_000
    grid_width: int = 1024
    jump_min: float = 0.02
    spike: float = 0.6
    grazing_deg: float = 1.0
    grazing_soft_deg: float = 4.0
    spike_grazing: float = 0.15
    backdrop_factor: float = 0.0
    backfill: bool = True
    skirt: bool = False
    fringe: bool = True
    steep_ratio: float = 1.1
    steep_pixels: float = 2.0
    refine_tolerance: float = 0.0025
    refine_min_pixels: int = 4
    refine_budget: float = 1.3
    texture_width: int = 4096
    sky: bool = True
    sky_radius: float = 0.0
    sky_grid_width: int = 256
    collision_triangles: int = 20_000
    aggressiveness: float = 7.0
    simplifier: str = "meshopt"
    uv_weight: float = 30.0
    colour_weight: float = 30.0
    colour_max_ratio: float = 6.0


def build_sheet(
    panorama: Panorama,
    depth: DepthMap,
    config: SheetConfig = SheetConfig(),
    semantics: SemanticLayers | None = None,
    eye_height: float = 1.6,
) -> MeshScene:
    """Triangulate an RGB-D panorama into textured "world", "sky" and "collision" parts.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres, same H x W as ``panorama`` (+inf = sky).
        config: see :class:`SheetConfig`.
        semantics: used only to keep pixels of class "backdrop" (a photo world's scenery) out of
            the collision part.
        eye_height: capture height above the ground, metres; only compared with the ground
            height found in the depth (reported as ``ground_y``), never used to rescale.

    Returns:
        MeshScene with parts "world" (textured with the panorama), "sky" (if any sky and
        ``config.sky``) and "collision" (if ``config.collision_triangles``), and a report.
    """
    _check_inputs(panorama, depth, config)
    t0 = time.perf_counter()
    h, w = depth.shape
    stride = max(1, math.ceil(w / config.grid_width))
    retries = 0
    t_grid = t_simp = 0.0
    texture = panorama_texture(panorama, config.texture_width)
    while True:
        t1 = time.perf_counter()
        rows, cols = grid_lines(depth.depth, depth.valid, stride, config)
        verts, faces, stats, puv, tex = sheet_geometry(
            depth.depth,
            depth.valid,
            stride,
            config,
            rows=rows,
            cols=cols,
            fringe=config.fringe,
            with_uv="texture",
            colour=panorama.image if config.skirt else None,
        )
        n_full = int(len(faces))
        t2 = time.perf_counter()
        if config.max_triangles and len(faces) > config.max_triangles:
            # (The "quadric" simplifier moves vertices: its skirt is textured by direction.)
            carry = (puv, tex) if config.simplifier == "meshopt" else ()
            verts, faces, *kept = simplify(
                verts,
                faces,
                config.max_triangles,
                preserve_border=True,
                aggressiveness=config.aggressiveness,
                method=config.simplifier,
                attributes=_simplify_attributes(puv, texture, config, len(faces)),
                lock=_steep_zone(verts, faces, config, 2 * math.pi / w),
                carry=carry,
            )
            puv, tex = kept if kept else (puv[:0], tex[:0])
        t_grid += t2 - t1
        t_simp += time.perf_counter() - t2
        # With silhouettes, seam and caps locked the simplifier can stall above the budget
        # (many depth edges, small budget); a coarser grid has shorter borders.
        if not config.max_triangles or len(faces) <= config.max_triangles or stride * 8 >= w:
            break
        stride *= 2
        retries += 1
    if config.max_triangles and len(faces) > config.max_triangles:
        raise InputError(
            f"the sheet cannot be simplified to {config.max_triangles} triangles (stalls at {len(faces)}) "
            "with its silhouettes kept; raise max_triangles"
        )
    parts: dict[str, Mesh] = {}
    if len(faces):
        normals = vertex_normals(verts, faces)
        uv_from = None
        if len(tex) == len(verts) and tex.any():
            # The skirt's and the backfill's new vertices carry a neighbouring pixel's colour
            # (_skirt_backfill): their texture coordinates are that pixel's.
            uv_from = np.asarray(verts, np.float64).copy()
            uv_from[tex] = dm.pixel_to_direction(puv[tex, 0] * w, puv[tex, 1] * h, w, h)
        v2, f2, uv, n2 = equirect_uvs(verts, faces, normals, uv_from=uv_from)
        parts["world"] = Mesh(v2, f2, n2, uv, texture)
    else:
        log.warning("the depth map has no surface: the sheet has no world part")
    far = float(depth.depth[depth.valid].max()) if depth.valid.any() else 0.0
    sky_radius = config.sky_radius if config.sky_radius > 0 else max(10.0, 1.5 * far)
    if config.sky and depth.sky.any():
        parts["sky"] = sky_dome(depth.sky, sky_radius, config.sky_grid_width, texture)
    if config.collision_triangles and len(faces):
        # a photo world's backdrop (class "backdrop", worldgen.stages.photo) is scenery, not ground to walk on
        solid = depth.valid & ~backdrop_mask(semantics, depth.shape)
        parts["collision"] = collision_from_grid(depth.depth, solid, config.collision_triangles, config)
    ground_y = _ground_height(depth)
    report = {
        "extractor": "sheet",
        "grid": [int(len(rows)), int(len(cols))],
        "stride": stride,
        "coarser_grid_retries": retries,
        "triangles_before": n_full,
        "triangles_after": int(parts["world"].n_faces) if "world" in parts else 0,
        "cut_edges": stats["cut_edges"],
        "backfill_triangles": stats["backfill_triangles"],
        "texture_size": [int(texture.shape[1]), int(texture.shape[0])],
        "sky_radius_m": round(sky_radius, 3) if "sky" in parts else None,
        "parts": {k: {"vertices": m.n_vertices, "triangles": m.n_faces} for k, m in parts.items()},
        "ground_y_m": None if ground_y is None else round(ground_y, 4),
        "eye_height_m": eye_height,
        "seconds": {
            "grid": round(t_grid, 3),
            "simplify": round(t_simp, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    return MeshScene(parts, report)


def _simplify_attributes(puv: np.ndarray, texture: np.ndarray, config: SheetConfig, n_faces: int) -> np.ndarray:
    """Per-vertex values whose interpolation meshoptimizer keeps: texture coordinates and colour.

    Args:
        puv: each vertex's panorama coordinates in [0, 1] (u right, v down). [V, 2] float
        texture: the world's texture. [Ht, Wt, 3] uint8
        n_faces: triangles before simplification (the colour term needs ``n_faces`` at most
            ``colour_max_ratio`` x ``max_triangles``).

    Returns:
        [V, 2] (``uv_weight`` x uv) or, with ``colour_weight``, [V, 5] (plus ``colour_weight`` x
        the texel's sRGB colour in [0, 1], nearest texel: a vertex sits on a pixel centre).
    """
    a = puv * config.uv_weight
    if config.colour_weight <= 0 or n_faces > config.colour_max_ratio * config.max_triangles:
        return a
    Ht, Wt = texture.shape[:2]
    # Integer texel indices (no float rounding that could differ between CPUs).
    x = np.clip(np.floor(puv[:, 0] * Wt).astype(np.int64), 0, Wt - 1)
    y = np.clip(np.floor(puv[:, 1] * Ht).astype(np.int64), 0, Ht - 1)
    colour = texture[y, x].astype(np.float64) * (config.colour_weight / 255.0)
    return np.concatenate([a, colour], 1)


def _check_inputs(panorama: Panorama, depth: DepthMap, config: SheetConfig) -> None:
    check_rgbd(panorama, depth)
    if config.max_triangles < 0 or config.collision_triangles < 0:
        raise InputError("triangle budgets must be >= 0 (0 = no simplification / no collision part)")
    if config.grid_width < 4 or config.sky_grid_width < 4:
        raise InputError("grid widths must be at least 4 columns")
    if not 0 < config.grazing_deg < 45 or not 0 <= config.grazing_soft_deg < 45:
        raise InputError(f"grazing_deg={config.grazing_deg} must lie in (0, 45) degrees")
    if config.simplifier not in ("meshopt", "quadric"):
        raise InputError(f"simplifier={config.simplifier!r}; use 'meshopt' or 'quadric'")
    if config.uv_weight < 0 or config.refine_tolerance < 0 or config.steep_ratio < 0 or config.refine_budget < 1:
        raise InputError("uv_weight, refine_tolerance and steep_ratio must be >= 0, refine_budget >= 1")
    if config.colour_weight < 0 or config.colour_max_ratio < 1:
        raise InputError("colour_weight must be >= 0 (0 = texture coordinates only) and colour_max_ratio >= 1")
    if config.jump_min < 0 or config.spike <= 0 or config.spike_grazing <= 0:
        raise InputError("jump_min must be >= 0, spike and spike_grazing > 0")


# --------------------------------------------------------------------------------------------
# Grid geometry
# --------------------------------------------------------------------------------------------


def grid_lines(depth: np.ndarray, valid: np.ndarray, stride: int, config: SheetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns of the grid: every ``stride``-th, plus skipped ones that carry shape.

    A skipped row (column) is added when, at ``config.refine_min_pixels`` or more of its
    pixels, the surface point lies farther than ``config.refine_tolerance`` x the scene radius
    from the chord between its neighbours on the grid lines around it: there, the triangles
    of the subsampled grid would cut through the surface. Only for ``stride`` 2 (a larger
    stride is a coarse fallback and stays uniform).

    Args:
        depth: ray distance, metres. [H, W] float
        valid: pixels with a surface. [H, W] bool

    Returns:
        (rows [h] int64, cols [w] int64), increasing, gaps of at most ``stride``.
    """
    H, W = depth.shape
    rows = np.arange(0, H, stride, dtype=np.int64)
    cols = np.arange(0, W, stride, dtype=np.int64)
    if stride != 2 or config.refine_tolerance <= 0 or not valid.any():
        return rows, cols
    d = np.where(valid, depth, np.nan).astype(np.float32)
    tol = config.refine_tolerance * float(np.percentile(depth[valid], 95))
    # Directions, logs and exponentials from worldgen._detmath throughout this module: numpy's
    # and glibc's versions differ in the last bit between CPUs, which changed the grid here.
    xs, ys = np.arange(W, dtype=np.float64) + 0.5, np.arange(H, dtype=np.float64) + 0.5
    P = dm.pixel_to_direction(xs[None, :], ys[:, None], W, H).astype(np.float32) * d[..., None]  # [H, W, 3]

    def chord_far(a: np.ndarray, p: np.ndarray, b: np.ndarray) -> np.ndarray:
        ab = b - a
        dist = np.linalg.norm(np.cross(p - a, ab), axis=-1) / np.maximum(np.linalg.norm(ab, axis=-1), 1e-12)
        with np.errstate(invalid="ignore"):
            return dist > tol  # NaN (no surface) -> False

    # Each test runs along the grid lines of the other direction (every other pixel).
    # A two-pixel step steeper than the bridge test (config.steep_ratio) would be cut into a
    # backfilled step two pixels tall; with the skipped line added it is one pixel tall.
    steep = math.log(config.steep_ratio) if config.steep_ratio > 0 else math.inf
    logd = dm.log(np.where(valid, depth, 1.0)).astype(np.float32)

    def steep_far(la: np.ndarray, lb: np.ndarray, va: np.ndarray, vb: np.ndarray) -> np.ndarray:
        return va & vb & (np.abs(la - lb) > steep)

    odd_r = np.arange(1, H - 1, 2)
    Pc, lc, vc = P[:, ::2], logd[:, ::2], valid[:, ::2]
    bad_r = (
        chord_far(Pc[odd_r - 1], Pc[odd_r], Pc[odd_r + 1])
        | steep_far(lc[odd_r - 1], lc[odd_r + 1], vc[odd_r - 1], vc[odd_r + 1])
    ).sum(1)
    odd_c = np.arange(1, W, 2)
    Pr, lr, vr = P[::2], logd[::2], valid[::2]
    nxt = (odd_c + 1) % W
    bad_c = (
        chord_far(Pr[:, odd_c - 1], Pr[:, odd_c], Pr[:, nxt])
        | steep_far(lr[:, odd_c - 1], lr[:, nxt], vr[:, odd_c - 1], vr[:, nxt])
    ).sum(0)
    # Most needed lines first (share of bad samples along the line), within the vertex budget.
    cand_r = np.nonzero(bad_r >= config.refine_min_pixels)[0]
    cand_c = np.nonzero(bad_c >= config.refine_min_pixels)[0]
    share = np.concatenate([bad_r[cand_r] / Pc.shape[1], bad_c[cand_c] / Pr.shape[0]])
    is_row = np.concatenate([np.ones(len(cand_r), bool), np.zeros(len(cand_c), bool)])
    line = np.concatenate([odd_r[cand_r], odd_c[cand_c]])
    order = np.argsort(-share, kind="stable")
    cap = config.refine_budget * len(rows) * len(cols)
    nr, nc = len(rows), len(cols)
    take = np.zeros(len(order), bool)
    for k in order:  # at most H/2 + W/2 candidate lines, not pixels
        r2, c2 = nr + is_row[k], nc + (not is_row[k])
        if r2 * c2 > cap:
            continue
        nr, nc = r2, c2
        take[k] = True
    rows = np.union1d(rows, line[take & is_row])
    cols = np.union1d(cols, line[take & ~is_row])
    return rows, cols


def sheet_geometry(
    depth: np.ndarray,
    valid: np.ndarray,
    stride: int,
    config: SheetConfig,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    fringe: bool = False,
    with_uv: bool | str = False,
    colour: np.ndarray | None = None,
) -> tuple:
    """Vertices and faces of the cut, closed sheet before simplification.

    Args:
        depth: ray distance, metres (anything where not valid). [H, W] float
        valid: pixels with a surface. [H, W] bool
        stride: sample every stride-th pixel in both directions (when ``rows`` / ``cols`` are None).
        config: cut thresholds and backfill switch.
        rows, cols: pixel rows / columns of the grid lines, increasing, first 0, gaps of at most
            ``stride`` (None = every stride-th). [h] / [w] int
        fringe: a grid vertex without surface next to one with surface (8-neighbourhood) gets
            the nearest neighbouring depth on its own ray, so the sheet reaches one grid cell
            into the sky and every surface pixel between grid lines is covered.
        with_uv: also return each vertex's panorama coordinates (u = 0 and 1 on the two seam
            copies, v = 0 / 1 on the pole copies, u of its column). "texture": also return
            which vertices are textured from other coordinates than their own direction (the
            skirt's and the backfill's new vertices with ``config.skirt``: their panorama
            coordinates are those of the pixel whose colour they carry).
        colour: the panorama, sRGB in [0, 1], or None. [H, W, 3] With ``config.skirt``, only
            cut triangles whose near corners lie on :func:`contrast_silhouettes` pixels get a
            skirt (None: all).

    Returns:
        (vertices [V, 3] float64 metres, faces [F, 3] int32 CCW from the origin, stats dict),
        plus uv [V, 2] float64 in [0, 1] when ``with_uv``, plus [V] bool when it is "texture".
    """
    H, W = depth.shape
    ri = np.arange(0, H, stride, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    ci = np.arange(0, W, stride, dtype=np.int64) if cols is None else np.asarray(cols, np.int64)
    depth = np.asarray(depth, np.float64)
    valid = np.asarray(valid, bool)
    rr = np.broadcast_to(ri[:, None], (len(ri), len(ci)))
    cc = np.broadcast_to(ci[None, :], (len(ri), len(ci)))
    gap_r = np.diff(np.append(ri, H))[:, None]  # rows each grid line stands for
    gap_c = np.diff(np.append(ci, W))[None, :]
    gmax = int(max(gap_r.max(), gap_c.max()))
    if gmax > 1:
        # A block whose nominal pixel is sky but which holds surface pixels takes its first
        # surface pixel instead (the vertex stays on that pixel's own ray), so tree tops and
        # roof edges against the sky keep their geometry when the grid is subsampled.
        ok0 = valid[rr, cc]
        for dy in range(gmax):
            for dx in range(gmax):
                if dy == dx == 0:
                    continue
                r2 = np.minimum(rr + dy, H - 1)
                c2 = np.minimum(cc + dx, W - 1)
                take = ~ok0 & valid[r2, c2] & (dy < gap_r) & (dx < gap_c)
                rr = np.where(take, r2, rr)
                cc = np.where(take, c2, cc)
                ok0 = ok0 | take
    d = depth[rr, cc]
    ok = valid[rr, cc]
    d = np.where(ok, d, np.inf)
    fx, fy = cc + 0.5, rr + 0.5
    add = np.zeros(d.shape, bool)
    if fringe:
        near = np.full(d.shape, np.inf)
        sx = np.zeros(d.shape)
        sy = np.zeros(d.shape)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                sh = np.roll(d, dx, axis=1)  # longitude wraps
                if dy:
                    sh = np.roll(sh, dy, axis=0)
                    sh[0 if dy > 0 else -1] = np.inf
                better = sh < near
                near = np.where(better, sh, near)
                sx = np.where(better, dx, sx)
                sy = np.where(better, dy, sy)
        add = ~ok & np.isfinite(near)
        d = np.where(add, near, d)
        ok = ok | add
        # Half a pixel back toward the surface neighbour: the fringe ends on the edge of the
        # sky pixel, covering every surface pixel before it but not the sky pixel's centre.
        fx = np.where(add, fx - 0.5 * sx, fx)
        fy = np.where(add, fy - 0.5 * sy, fy)
    d = np.where(ok, d, 1.0)
    dirs = dm.pixel_to_direction(fx, fy, W, H)
    pts = dirs * d[..., None]
    h, w = d.shape

    # Grid of (h + 2) x (w + 2) vertices: row 0 / h+1 are the poles, column 0 / w+1 the seam.
    Q = np.zeros((h + 2, w + 2, 3))
    M = np.zeros((h + 2, w + 2), bool)
    Q[1:-1, 1:-1] = pts
    M[1:-1, 1:-1] = ok
    p1, p2 = pts[:, -1], pts[:, 0]  # lon just below +pi and just above -pi
    den = p1[:, 0] - p2[:, 0]
    t = np.where(np.abs(den) > 1e-12, p1[:, 0] / np.where(np.abs(den) > 1e-12, den, 1.0), 0.5)
    seam = p1 + t[:, None] * (p2 - p1)
    seam_ok = ok[:, -1] & ok[:, 0] & (seam[:, 2] > 0)
    Q[1:-1, 0] = Q[1:-1, -1] = seam
    UV = np.zeros((h + 2, w + 2, 2))
    UV[1:-1, 1:-1, 0] = fx / W
    UV[1:-1, 1:-1, 1] = fy / H
    UV[:, 0, 0], UV[:, -1, 0] = 0.0, 1.0
    UV[1:-1, 0, 1] = UV[1:-1, -1, 1] = (ri + 0.5) / H
    UV[0, 1:-1, 0] = UV[-1, 1:-1, 0] = (ci + 0.5) / W
    UV[0, :, 1], UV[-1, :, 1] = 0.0, 1.0
    M[1:-1, 0] = M[1:-1, -1] = seam_ok
    for row, grid_row, sign in ((0, 0, 1.0), (h - 1, h + 1, -1.0)):
        r_ok = ok[row]
        if r_ok.mean() >= 0.5:
            y = float(np.median(pts[row, r_ok, 1])) * sign
            if y > 0:
                Q[grid_row, :] = (0.0, sign * y, 0.0)
                M[grid_row, :] = True

    V = Q.reshape(-1, 3)
    valid_v = M.reshape(-1)
    D = np.sqrt(np.einsum("ijk,ijk->ij", Q, Q))  # ray distance per vertex
    L = dm.log(np.maximum(D, 1e-12))
    U = Q / np.maximum(D, 1e-12)[..., None]  # unit ray per vertex
    idx = np.arange((h + 2) * (w + 2)).reshape(h + 2, w + 2)
    cos_graze = math.cos(math.radians(config.grazing_deg))
    cos_soft = math.cos(math.radians(max(config.grazing_soft_deg, config.grazing_deg)))
    backdrop = (
        config.backdrop_factor * float(np.percentile(d[ok], 95))
        if config.backdrop_factor > 0 and ok.any()
        else math.inf
    )
    pix = 2 * math.pi / W  # one pixel of ray angle, radians

    def half_gap(ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
        """1 - cos of the angle between unit rays, computed without cancellation."""
        g = ua - ub
        return 0.5 * np.einsum("...k,...k->...", g, g)

    # Horizontal edges (i, j)-(i, j+1) for j in 0..w; circular along a row (col w+1 == col 0).
    s_h = L[:, 1:] - L[:, :-1]  # [(h+2), w+1]
    ok_h = M[:, 1:] & M[:, :-1]
    cut_h = _cut_edges(
        s_h,
        ok_h,
        D[:, :-1],
        D[:, 1:],
        half_gap(U[:, :-1], U[:, 1:]),
        circular=True,
        cfg=config,
        cos_graze=cos_graze,
        cos_soft=cos_soft,
        backdrop=backdrop,
        pixel=pix,
    )
    # Vertical edges (i, j)-(i+1, j) for i in 0..h.
    s_v = (L[1:, :] - L[:-1, :]).T  # [(w+2), h+1]
    ok_v = (M[1:, :] & M[:-1, :]).T
    cut_v = _cut_edges(
        s_v,
        ok_v,
        D[:-1, :].T,
        D[1:, :].T,
        half_gap(U[:-1, :], U[1:, :]).T,
        circular=False,
        cfg=config,
        cos_graze=cos_graze,
        cos_soft=cos_soft,
        pixel=pix,
        backdrop=backdrop,
    ).T  # [h+1, w+2]

    # Quads (i, j): rows i..i+1, cols j..j+1, for i in 0..h, j in 0..w.
    TL, TR = idx[:-1, :-1], idx[:-1, 1:]
    BL, BR = idx[1:, :-1], idx[1:, 1:]
    c_top, c_bot = cut_h[:-1], cut_h[1:]  # [h+1, w+1]
    c_left, c_right = cut_v[:, :-1], cut_v[:, 1:]
    Lf = L.reshape(-1)
    dA = np.abs(Lf[TL] - Lf[BR])  # diagonal TL-BR
    dB = np.abs(Lf[TR] - Lf[BL])  # diagonal TR-BL
    use_a = dA < dB
    Df = D.reshape(-1)
    omA = half_gap(U[:-1, :-1], U[1:, 1:])
    omB = half_gap(U[:-1, 1:], U[1:, :-1])
    gA = ((_ray_cos(Df[TL], Df[BR], omA) > cos_graze) | _steep(omA, dA, config, pix)) & (
        np.minimum(Lf[TL], Lf[BR]) <= math.log(backdrop)
    )
    gB = ((_ray_cos(Df[TR], Df[BL], omB) > cos_graze) | _steep(omB, dB, config, pix)) & (
        np.minimum(Lf[TR], Lf[BL]) <= math.log(backdrop)
    )

    # Two triangles per quad, split along the diagonal with the smaller depth ratio:
    # TL-BR: (TL, BL, BR) uses left+bottom, (TL, BR, TR) uses top+right;
    # TR-BL: (TL, BL, TR) uses left+top, (TR, BL, BR) uses bottom+right.
    # Pole rows keep a single triangle per quad (the other one is degenerate at the pole):
    # top row (pole, row 1 j, row 1 j+1) = (TL, BL, BR), bottom row (TL, BL, TR).
    use_a[0], use_a[-1] = True, False
    ua3 = use_a[..., None]
    t1 = np.where(ua3, np.stack([TL, BL, BR], -1), np.stack([TL, BL, TR], -1)).astype(np.int32)
    t2 = np.where(ua3, np.stack([TL, BR, TR], -1), np.stack([TR, BL, BR], -1)).astype(np.int32)
    diag = np.where(use_a, gA, gB)
    k1 = ~(c_left | np.where(use_a, c_bot, c_top) | diag)
    k2 = ~(c_right | np.where(use_a, c_top, c_bot) | diag)
    which2 = np.ones_like(use_a)
    which2[0] = which2[-1] = False
    tris = np.stack([t1, t2], 0)  # [2, h+1, w+1, 3]
    keep = np.stack([k1, k2 & which2], 0)
    which_all = np.stack([np.ones_like(use_a), which2], 0)
    all_valid = valid_v[tris].all(-1)
    keep &= all_valid
    faces = tris[keep]
    n_cut = int((which_all & all_valid & ~keep).sum())
    stats = {"cut_edges": int((cut_h & ok_h)[1:-1].sum() + (cut_v & ok_v.T).sum()), "backfill_triangles": 0}
    own = np.ones(len(V), bool)  # vertices textured by their own direction
    if config.backfill:
        dropped = tris[which_all & all_valid & ~keep]
        # The skirt only on the full pixel grid: on a subsampled one (the fast preset's world, the
        # balanced preset above 1024 columns) the backfill also covers skipped pixels whose
        # centres the capture point sees on it, so it keeps its texture by direction, the
        # background layers keep the foreground's colour there (a hidden block of the coarser
        # working grid holds visible pixels), and the skirt's locked triangles only cost the
        # world's budget (forest at 2048 columns from the capture point: 58.91 -> 58.82 dB).
        if len(dropped) and config.skirt and gmax == 1:
            # Which edges of each dropped triangle are cut (edge k joins corners k and k + 1); a
            # diagonal counts as cut past the grazing tests also when it steps by over 10 %.
            sA = gA | (dA > math.log(1.1))
            sB = gB | (dB > math.log(1.1))
            e1 = np.where(ua3, np.stack([c_left, c_bot, sA], -1), np.stack([c_left, sB, c_top], -1))
            e2 = np.where(ua3, np.stack([sA, c_right, c_top], -1), np.stack([sB, c_bot, c_right], -1))
            ecut = np.stack([e1, e2], 0)[which_all & all_valid & ~keep]
            # Fringe vertices stand in for sky pixels (at their edges, at the surface's depth).
            on_sky = np.zeros((h + 2, w + 2), bool)
            on_sky[1:-1, 1:-1] = add
            # Vertices on silhouette pixels whose colour differs from the background's beside
            # them (nearest pixel: a vertex sits on a pixel centre); None: all.
            sil = None
            if colour is not None:
                uvf = UV.reshape(-1, 2)
                vx = np.clip(np.floor(uvf[:, 0] * W).astype(np.int64), 0, W - 1)
                vy = np.clip(np.floor(uvf[:, 1] * H).astype(np.int64), 0, H - 1)
                full = np.where(valid, depth, np.inf)
                sil = contrast_silhouettes(full, colour, math.exp(config.jump_min))[vy, vx]
            V, extra, uv_new = _skirt_backfill(
                V, dropped, ecut, Lf, Df, UV.reshape(-1, 2), config.jump_min, depth, on_sky.reshape(-1), sil
            )
            UV = np.concatenate([UV.reshape(-1, 2), uv_new])
            own = np.concatenate([own, np.zeros(len(uv_new), bool)])
            faces = np.concatenate([faces, extra])
            stats["backfill_triangles"] = int(len(extra))
        elif len(dropped):
            n_before = len(V)
            V, extra, moved = _backfill(V, dropped, Lf, config.jump_min)
            src = dropped[moved]  # each moved corner's own vertex: its texture coordinates
            UVf = UV.reshape(-1, 2)
            UV = np.concatenate([UVf, UVf[src]])
            own = np.concatenate([own, np.ones(len(V) - n_before, bool)])
            faces = np.concatenate([faces, extra])
            stats["backfill_triangles"] = int(len(extra))
    stats["cut_triangles"] = n_cut
    verts, faces, uv, own = compact(V, faces.astype(np.int64), UV.reshape(-1, 2), own)
    if with_uv == "texture":
        return verts, faces, stats, uv, ~own
    return (verts, faces, stats, uv) if with_uv else (verts, faces, stats)


def _cut_edges(
    s: np.ndarray,
    ok: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    om: np.ndarray,
    *,
    circular: bool,
    cfg: SheetConfig,
    cos_graze: float,
    cos_soft: float,
    backdrop: float = math.inf,
    pixel: float = 0.0,
) -> np.ndarray:
    """Which edges of grid lines cross a depth discontinuity.

    Args:
        s: log-depth step along each edge, one grid line per row. [R, E]
        ok: both ends have a surface. [R, E] bool
        da, db: ray distances of the edge ends, metres. [R, E]
        om: 1 - cos of the angle between the end rays. [R, E]
        circular: the line closes on itself (rows of the panorama).
        cos_graze, cos_soft: cosines of the hard and soft grazing angles.
        backdrop: edges with both ends beyond this distance, metres, are never cut.
        pixel: one panorama pixel of ray angle, radians (for the steep test).

    Returns:
        cut (or unusable) edges. [R, E] bool
    """
    s = np.where(ok, s, np.nan)
    if circular:
        prev, nxt = np.roll(s, 1, axis=1), np.roll(s, -1, axis=1)
    else:
        prev = np.concatenate([s[:, :1], s[:, :-1]], 1)
        nxt = np.concatenate([s[:, 1:], s[:, -1:]], 1)
    prev = np.where(np.isnan(prev), s, prev)
    nxt = np.where(np.isnan(nxt), s, nxt)
    mag = np.abs(s)
    c = _ray_cos(da, db, om)
    with np.errstate(invalid="ignore"):
        dev = np.abs(s - 0.5 * (prev + nxt))
        spike = np.where(c > cos_soft, dev > cfg.spike_grazing * mag, dev > cfg.spike * mag)
        jump = (mag > cfg.jump_min) & spike
    near = np.minimum(da, db) <= backdrop
    jump = jump | _steep(om, mag, cfg, pixel)
    return ~ok | (np.where(ok, jump, False) | (c > cos_graze)) & near


def _steep_zone(verts: np.ndarray, faces: np.ndarray, config: SheetConfig, pixel: float) -> np.ndarray:
    """Vertices the simplifier must keep so that no collapse makes a bridging edge.

    Two kept edges of a grazing surface, each under the steep ratio, can merge into one over
    it within the same pixel limit; their ends are kept (ends of edges shorter than the pixel
    limit whose depth ratio exceeds the square root of ``steep_ratio``).

    Returns:
        [V] bool
    """
    lock = np.zeros(len(verts), bool)
    if config.steep_ratio <= 0 or not len(faces):
        return lock
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    dist = np.maximum(np.sqrt(np.einsum("ij,ij->i", verts, verts)), 1e-12)
    unit = verts / dist[:, None]
    g = unit[e[:, 0]] - unit[e[:, 1]]
    om = 0.5 * np.einsum("ij,ij->i", g, g)
    mag = np.abs(dm.log(dist[e[:, 0]] / dist[e[:, 1]]))
    z = (om < 1.0 - math.cos(1.02 * config.steep_pixels * pixel)) & (mag > 0.5 * math.log(config.steep_ratio))
    lock[e[z].ravel()] = True
    return lock


def _steep(om: np.ndarray, mag: np.ndarray, cfg: SheetConfig, pixel: float) -> np.ndarray:
    """The issue's bridge test: ends less than ``cfg.steep_pixels`` pixels of ray angle apart
    whose depths differ by more than ``cfg.steep_ratio`` (both with a small safety margin, so
    float32 vertices exactly at the limit are cut too). Such an edge runs within ~2 degrees of
    its ray: seen from the capture point it conveys nothing, and from a step away it is a sheet.

    Args:
        om: 1 - cos of the angle between the end rays. [...]
        mag: |log-depth step| along the edge. [...]
        pixel: one panorama pixel of ray angle, radians (0 = test off).

    Returns:
        [...] bool
    """
    if pixel <= 0 or cfg.steep_ratio <= 0:
        return np.zeros(mag.shape, bool)
    lim = 1.0 - math.cos(1.02 * cfg.steep_pixels * pixel)
    with np.errstate(invalid="ignore"):
        return (om < lim) & (mag > math.log(cfg.steep_ratio) - 2e-3)


def _ray_cos(da: np.ndarray, db: np.ndarray, om: np.ndarray) -> np.ndarray:
    """|cos| of the angle between a segment and the ray through its midpoint, from its ends'
    ray distances ``da``, ``db`` and ``om`` = 1 - cos of their rays' angle (0 if degenerate).

    With a, b the end points: (b - a).(b + a) = db^2 - da^2, |b - a|^2 = (da - db)^2 + 2 da db om
    and |b + a|^2 = (da + db)^2 - 2 da db om. [...]
    """
    p = 2.0 * da * db * om
    seg2 = (da - db) ** 2 + p
    mid2 = (da + db) ** 2 - p
    den = np.sqrt(np.maximum(seg2 * mid2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.abs(db * db - da * da) / den
    return np.where(den > 0, c, 0.0)


def _backfill(
    V: np.ndarray, tris: np.ndarray, L: np.ndarray, jump_min: float
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Re-add cut triangles on their far side: near corners move back along their rays.

    Smooth ground cut by the bridge test alone (seen within ~2 degrees of edge-on) becomes
    one-pixel steps hanging from each grid line. Moving far corners forward instead was
    measured worse (coast Chamfer 0.05 -> 0.13 %): a ray exactly on a grid line lies on the
    shared border of two steps either way.

    Args:
        V: vertex positions. [V, 3]
        tris: cut triangles (all corners valid). [T, 3] int
        L: log ray distance per vertex. [V]
        jump_min: corners within this log ratio of the farthest corner count as far.

    Returns:
        (V extended with the moved corners [V + n, 3], triangles [T, 3] int64, the moved corners
        as (triangle, corner) indices into ``tris`` ([n] each), in the order of the new vertices).
    """
    lt = L[tris]  # [T, 3]
    lmax = lt.max(1, keepdims=True)
    far = lt >= lmax - max(jump_min, 1e-6)
    far_depth = dm.exp(np.where(far, lt, 0.0).sum(1) / far.sum(1))  # mean log depth of far corners
    near_t, near_c = np.nonzero(~far)
    src = tris[near_t, near_c]
    dirs = V[src] / np.linalg.norm(V[src], axis=1, keepdims=True)
    new_pts = dirs * far_depth[near_t, None]
    out = tris.astype(np.int64).copy()
    out[near_t, near_c] = len(V) + np.arange(len(src))
    return np.concatenate([V, new_pts]), out, (near_t, near_c)


# How far the skirt's copies of the near corners lie beyond them, as a share of their distance
# from the triangle's centroid (_skirt_backfill).
SKIRT_OUT = 0.25
# The smallest colour difference (sRGB, any channel) across a silhouette that gets a skirt
# (contrast_silhouettes).
SKIRT_COLOUR = 0.1


def contrast_silhouettes(depth: np.ndarray, colour: np.ndarray, ratio: float) -> np.ndarray:
    """Pixels with a 4-neighbour more than ``ratio`` farther (or sky) whose colour differs from
    theirs by at least ``SKIRT_COLOUR`` in some channel: the silhouette pixels whose foreground
    colour would show on the background beside them (longitude wraps, rows stop at the poles).
    The world's skirt is built at these (:func:`_skirt_backfill`), and the background layers keep
    the foreground's colour only at the others (worldgen.mesh.layers.keep_silhouette_colour).

    Args:
        depth: first-surface distance, metres (+inf sky). [h, w]
        colour: sRGB in [0, 1]. [h, w, 3]

    Returns:
        [h, w] bool
    """
    d = np.asarray(depth, np.float64)
    c = np.asarray(colour, np.float32)
    out = np.zeros(d.shape, bool)
    for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
        dn = np.roll(d, shift, axis)
        cn = np.roll(c, shift, axis)
        if axis == 0:  # no wrap over the poles
            edge = 0 if shift == 1 else -1
            dn[edge] = d[edge]
        with np.errstate(invalid="ignore"):
            farther = dn > ratio * d
        out |= farther & (np.abs(cn - c).max(-1) >= SKIRT_COLOUR)
    return out


def _skirt_backfill(
    V: np.ndarray,
    tris: np.ndarray,
    ecut: np.ndarray,
    L: np.ndarray,
    D: np.ndarray,
    UV: np.ndarray,
    jump_min: float,
    depth: np.ndarray,
    fringe: np.ndarray,
    contrast: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backfill in the background's colour, and a skirt of the foreground out to its pixels' edges.

    The world's vertices sit on pixel centres, so a cut cell between a silhouette pixel's centre
    and its background neighbour's is half foreground pixel, half background pixel. The plain
    backfill (:func:`_backfill`) covers the whole cell at the far depth, textured by direction:
    its near half carries the foreground's colour on the background, which a viewer who steps
    aside sees as a one-pixel copy of the outline beside every thin object. Here the corners of
    each cut triangle are split into a near and a far side at their largest step in depth, and
    the triangle gives:

    * the **backfill** as before (corners more than ``jump_min`` nearer than the farthest pushed
      back along their rays to its depth, so the background has no crack from a step away),
      but the near side's pushed corners are textured with the far side's pixels (the mean of
      their panorama coordinates), the background's colour;
    * a **skirt** in front of it: the near corners and, on each edge to a far corner, the point
      where the depth edge crosses it (the pixel boundary, halfway: the grid is the panorama's
      full pixel grid), at the near corner's depth and textured by direction as the world is, so the foreground
      covers its whole pixels at its own depth (its texture ramps towards the pixel edge as the
      panorama's bilinear lookup does). Its new vertices are shared by the triangles on both
      sides of an edge: one strip along each silhouette.

    From the capture point the skirt covers the foreground's half of the cell and the backfill
    the background's half, in the background's colour; a ray through a silhouette pixel's
    centre (a border vertex of the world) passes through the skirt's interior: the skirt's near
    corners are copies moved a little outward, so that the ray caster cannot let that ray
    through a tie between faces. A triangle whose two near corners are themselves cut apart (a
    step in front of another step; a skirt would bridge it) or that has a fringe vertex (a sky
    pixel's stand-in) gets no skirt and is backfilled as :func:`_backfill` does, textured by
    direction and joined to the world: a ray through its corners' pixel centres then shows
    those pixels' colours whichever face it meets.

    Args:
        V: vertex positions. [V, 3]
        tris: cut triangles (all corners valid), CCW from the origin. [T, 3] int
        ecut: which edges of each triangle are cut; edge k joins corners k and k + 1. [T, 3] bool
        L: log ray distance per vertex. [V]
        D: ray distance per vertex, metres. [V]
        UV: panorama coordinates per vertex, in [0, 1] (pixel centre (x + 0.5) / W). [V, 2]
        jump_min: corners within this log ratio of the farthest corner count as far.
        depth: ray distance per panorama pixel, metres (its shape: the pixel grid). [H, W]
        fringe: the sheet's fringe vertices (sky pixels' stand-ins, ``sheet_geometry``). [V] bool
        contrast: vertices on :func:`contrast_silhouettes` pixels, or None (all). [V] bool A
            triangle with a near corner elsewhere gets no skirt: where the two sides are alike in
            colour its backfill textured by direction cannot be told from the background, and
            the skirt's triangles (locked borders, never simplified) cost the world's budget.

    Returns:
        (V extended with the new vertices [V + n, 3], triangles [T', 3] int64, the new vertices'
        panorama coordinates [n, 2]: those of the pixel whose colour each carries, for the
        backfill's pushed corners not those of their own direction).
    """
    H, W = depth.shape
    tris = np.asarray(tris, np.int64)
    n0 = len(V)
    j = max(jump_min, 1e-6)
    lt = L[tris]
    T0 = len(tris)
    # Near and far sides: split at the largest step between the sorted corners.
    order = np.argsort(lt, 1, kind="stable")
    ls = np.take_along_axis(lt, order, 1)
    two_near = (ls[:, 2] - ls[:, 1]) >= (ls[:, 1] - ls[:, 0])
    near = np.zeros((T0, 3), bool)
    near[np.arange(T0), order[:, 0]] = True
    near[np.arange(T0), order[:, 1]] = two_near
    # Triangles cut by a grazing test alone (all corners within jump_min) are re-added as they
    # are, as _backfill does; two near corners across a cut edge get no skirt.
    pair_cut = (ecut & near & np.roll(near, -1, 1)).any(1)
    # Nor does a triangle with a fringe vertex: the fringe lies on a sky pixel's edge, and a skirt
    # between two fringe vertices covered the sky pixel's centre (forest from the capture point,
    # full grid: 161 sky pixels drawn in a surface's colour, 58.9 -> 45.9 dB).
    split = ((ls[:, 2] - ls[:, 0]) > j) & ~pair_cut & ~fringe[tris].any(1)
    if contrast is not None:
        split &= (~near | contrast[tris]).all(1)
    near &= split[:, None]
    # The backfill: corners over jump_min nearer than the farthest pushed back to its depth.
    V, back, (near_t, near_c) = _backfill(V, tris, L, jump_min)
    src = tris[near_t, near_c]
    # The skirt, on the split triangles. Rotate each (keeping its cyclic order, so its winding)
    # so that corner 0 is the odd one out: the near corner of a 1-near triangle, the other one
    # of a 2-near one.
    t = tris[split]
    n3 = near[split]
    one = n3.sum(1) == 1
    odd = np.where(one[:, None], n3, ~n3)
    rot = (np.argmax(odd, 1)[:, None] + np.arange(3)[None, :]) % 3
    a, b, c = np.take_along_axis(t, rot, 1).T
    a_near = one
    # The two split edges a-b and a-c, each as (near end, far end).
    en = np.concatenate([np.where(a_near, a, b), np.where(a_near, a, c)])
    ef = np.concatenate([np.where(a_near, b, a), np.where(a_near, c, a)])
    key, inv = np.unique(en * n0 + ef, return_inverse=True)
    inv = inv.reshape(-1)
    n_e, f_e = key // n0, key % n0
    # The depth edge crosses each edge at the pixel boundary, halfway between the two pixel
    # centres (the skirt is built on the full pixel grid only: sheet_geometry).
    x0, y0 = UV[n_e, 0] * W, UV[n_e, 1] * H
    dx, dy = UV[f_e, 0] * W - x0, UV[f_e, 1] * H - y0
    dx = (dx + W / 2) % W - W / 2  # longitude wraps (seam copies are u = 0 and 1)
    t_cut = 0.5
    # The near side's pushed corners take the far side's pixels (their mean); others their own.
    other = ~near
    far_uv = (UV[tris] * other[..., None]).sum(1) / other.sum(1)[:, None]
    back_uv = np.where(near[near_t, near_c][:, None], far_uv[near_t], UV[src])
    dirs = dm.pixel_to_direction(x0 + dx * t_cut, y0 + dy * t_cut, W, H)
    skirt_v = dirs * D[n_e][:, None]
    # Textured by direction, as the world is (seam copies keep u in [0, 1]): the skirt is the
    # foreground's own outer half pixel, and from the capture point the texture still ramps
    # from the foreground's colour to the pixel edge as the panorama's bilinear lookup does.
    # (With the last near pixel's colour all over it the silhouettes became hard steps, which a
    # view from the capture point at another resolution reads as worse than the ramp: the
    # walk bench's 160-pixel views at 0 m, forest 40.73 -> 38.77 dB.)
    skirt_uv = np.stack([np.clip((x0 + dx * t_cut) / W, 0.0, 1.0), (y0 + dy * t_cut) / H], 1)
    # The skirt's near corners: copies of the triangle's near corners moved a quarter of the way
    # from its centroid further out (in panorama pixels, into the foreground), at their depth,
    # textured by direction. A ray through a border vertex's pixel centre then passes through
    # the skirt's interior, not through a vertex shared by a fan of faces: the ray caster may let
    # such a ray through all of them (a tie), and it met the backfill behind in the background's
    # colour (a 128-row pole room from the capture point: 58.3 -> 46.3 dB in two pixels). Where
    # the skirt overlaps the world's own faces it lies at their depth in their texture, so
    # whichever wins shows the same; and a viewer aside sees no seam between the two. (With the
    # skirt 0.1 % behind the world and overlapping it by 1 %, light dots showed along a pole's
    # edge from 1 m aside: the offset's parallax opened the overlap.)
    xy = np.stack([UV[t, 0] * W, UV[t, 1] * H], -1)  # [T, 3, 2]
    xy[..., 0] = xy[:, :1, 0] + (xy[..., 0] - xy[:, :1, 0] + W / 2) % W - W / 2
    cen = xy.mean(1, keepdims=True)
    out_xy = xy + SKIRT_OUT * (xy - cen)
    n1 = n0 + len(src) + len(key)
    T = len(t)
    rows = np.arange(T)
    # New corner k of triangle i (its rotated corners a, b, c): vertex n1 + 3 i + k.
    out_v = dm.pixel_to_direction(out_xy[..., 0] % W, np.clip(out_xy[..., 1], 0, H), W, H) * D[t][..., None]
    out_uv = np.stack([np.clip(out_xy[..., 0] / W, 0.0, 1.0), np.clip(out_xy[..., 1] / H, 0.0, 1.0)], -1)
    rot_out = n1 + 3 * rows[:, None] + rot
    A, Bc, C = rot_out.T
    S = n0 + len(src) + inv
    s_ab, s_ac = S[:T], S[T:]
    # 1 near (a): (a', s_ab, s_ac). 2 near (b, c): (s_ab, b', c'), (s_ab, c', s_ac).
    skirt = np.concatenate(
        [
            np.stack([A, s_ab, s_ac], 1)[one],
            np.stack([s_ab, Bc, C], 1)[~one],
            np.stack([s_ab, C, s_ac], 1)[~one],
        ]
    )
    # Only the copies the skirt uses are kept (compact() drops the rest).
    return (
        np.concatenate([V, skirt_v, out_v.reshape(-1, 3)]),
        np.concatenate([back, skirt]),
        np.concatenate([back_uv, skirt_uv, out_uv.reshape(-1, 2)]),
    )


# --------------------------------------------------------------------------------------------
# Sky dome and ground check
# --------------------------------------------------------------------------------------------


def sky_dome(sky: np.ndarray, radius: float, grid_width: int, texture: np.ndarray) -> Mesh:
    """A constant-radius dome over the sky pixels (one grid cell of margin), textured by direction.

    Args:
        sky: sky pixels. [H, W] bool
        radius: dome radius, metres.
        grid_width: columns of the dome grid.
        texture: the panorama texture. [Ht, Wt, 3] uint8

    Returns:
        The "sky" Mesh; faces CCW seen from the centre.
    """
    H, W = sky.shape
    stride = max(1, math.ceil(W / grid_width))
    h, w = math.ceil(H / stride), math.ceil(W / stride)
    pad = np.zeros((h * stride, w * stride), bool)
    pad[:H, :W] = sky
    cells = pad.reshape(h, stride, w, stride).any(axis=(1, 3))
    # Margin: one cell in every direction (wrapping in longitude) so the dome reaches behind
    # the world's silhouettes.
    grow = cells.copy()
    grow[1:] |= cells[:-1]
    grow[:-1] |= cells[1:]
    grow |= np.roll(grow, 1, axis=1) | np.roll(grow, -1, axis=1)
    # Upsample back to a pixel mask sampled by sheet_geometry at the same stride.
    mask = np.repeat(np.repeat(grow, stride, 0), stride, 1)[:H, :W]
    cfg = SheetConfig(grazing_deg=1.0, backfill=False)
    depth = np.full((H, W), radius, np.float64)
    v, f, _ = sheet_geometry(depth, mask, stride, cfg)
    n = -(v / np.linalg.norm(v, axis=1, keepdims=True))  # inward: toward the viewer
    v2, f2, uv, n2 = equirect_uvs(v, f, n)
    return Mesh(v2, f2, n2, uv, texture)


def _ground_height(depth: DepthMap) -> float | None:
    """Median height of surface points seen more than 45° below the horizon, metres (None if none)."""
    H, W = depth.shape
    rows = np.arange(H)
    lat = math.pi / 2 - math.pi * (rows + 0.5) / H
    low = rows[lat < -math.pi / 4]
    if not len(low):
        return None
    d = depth.depth[low]
    ok = depth.valid[low]
    if not ok.any():
        return None
    y = d * dm.sin(lat[low])[:, None]
    return float(np.median(y[ok]))
