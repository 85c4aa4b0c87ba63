"""The hidden background as a mesh part: the sheet plus a textured "background" layer behind depth edges.

:func:`build_layered_sheet` is the ``sheet`` backend's extractor when ``walk_radius`` > 0:

1. :func:`worldgen.layers.build_layers` continues the background behind every occluding edge
   (out to what a viewer ``walk_radius`` metres from the capture point sees) and inpaints its
   colour in panorama space.
2. The hidden background is triangulated on the layer's working grid with the sheet's own cut
   rules (:func:`worldgen.mesh.sheet.sheet_geometry`: vertices on their pixel rays at the
   continued depth, cut where the continued background itself has a depth edge, so nothing is
   stretched between layers), including a one-pixel ring of visible background at every edge
   so it joins the visible surface, and simplified to ``layer_triangles``.
3. It becomes the part ``background`` (its own node in the exports), textured with the panorama
   in which the hidden pixels are replaced by the inpainted background; its UVs are the
   panorama coordinates of its vertices' rays, as the world part's. From the capture point it
   lies behind the foreground and changes nothing.
4. The hidden geometry (the background, the foreground's back, the fins and the sky rim) is
   built first, within ``layer_triangles``; the world part is the ordinary sheet with what it
   leaves of ``max_triangles``, so world and hidden geometry together stay within the one
   budget. The sheet's simplifier weighs the texture's colour (``colour_weight``), so the
   world's 10-13 % smaller share costs the capture point under 0.1 dB (forest 2048).
5. The collision part is the world's collision plus a coarse collision of the background
   (``layer_collision_share`` of ``collision_triangles``), so a player walking behind a sofa stands
   on the hidden floor.
6. Hidden pixels whose background is the sky widen the sky dome, which then takes the same
   texture, the inpainted sky included in the texels right behind silhouettes. The dome's cells
   at silhouettes that the capture point sees (:func:`sky_rim`) join the background part with
   the panorama's colour in those texels, so bilinear lookups at silhouettes seen from the
   capture point do not change while a viewer who steps aside sees sky behind a palm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from ..layers import HiddenLayer, LayerConfig, build_layers
from ..layers.diffusion import fill_options
from ..stages.photo import backdrop_mask
from ..types import DepthMap, Mesh, MeshScene, Panorama, SemanticLayers
from .collision import collision_from_grid
from .sheet import SheetConfig, build_sheet, contrast_silhouettes, sheet_geometry, sky_dome
from .simplify import simplify, vertex_normals
from .texture import equirect_uvs, panorama_texture

# The sky rim's distance (sky_rim): just beyond the farthest surface, so that it does not widen the
# scene's reach (exporters fold what lies past 0.8 x a camera's far plane), and in front of the sky
# dome by more than the sag of the dome's coarse cells between their corners.
RIM_REACH = 1.01
RIM_GAP = 1.003


@dataclass(frozen=True)
class LayeredSheetConfig(SheetConfig):
    """SheetConfig's fields plus the hidden-surface completion.

    Args:
        walk_radius: how far from the capture point a viewer may walk, metres; the background is
            completed far enough behind every depth edge to cover what they see (default 2.0;
            0 = no background part, the plain sheet).
        layer_triangles: most triangles of the hidden geometry (the "background" part, the
            foreground's back, the fins and the sky rim), out of ``max_triangles``: the world
            gets the rest, so the world and the hidden geometry together stay within
            ``max_triangles`` (default 40000; at most half of ``max_triangles``).
        layer_collision_share: share of ``collision_triangles`` given to the background's
            collision (default 0.25).
        layer_work_width: columns of the completion's working grid (default 1024).
        inpaint: registered inpainter for the hidden colour ("auto" default: "diffusion" with a
            fill model, else "patchmatch"; "diffuse").
        fill_model, fill_prompt, fill_steps: the "diffusion" inpainter's pipeline (filled from
            ``--model fill=...``), prompt ("" = the run's prompt, else a neutral one) and steps
            (worldgen/layers/diffusion.py).
        layer_nested: also complete the nearest hidden background where it lies in front of the
            farthest (nested occluders: trunks behind trunks, chair legs before a table), as a
            second layer in the same part, its texture stacked below the first (default True).
        sky_guard_blend: share of the inpainted sky in the sky dome's texels just behind
            silhouettes (the guard band; default 1). The dome's cells that the capture point
            sees at silhouettes are a separate rim in the background part with the panorama's
            colour (:func:`sky_rim`), so the capture-point view is the same for any value, and
            a viewer who steps aside sees sky behind a palm instead of a rim in its colour
            (coast at 0.5 m: +1.6 dB). 0 leaves the rim out (the dome as before).
        layer_ring: pixels of visible background (working grid) the background part overlaps
            at its seam with the world (:func:`seam_ring`; default 3, 1 = the seeds only).
        layer_steps: the background part also bridges, behind the world, the small steps the
            world cuts (:func:`step_strips`). Default False: it closed the dotted cracks along
            a rug's edge (procedural interior, worst view at 0.5 m 0.25 -> 0.07 %), but its
            bridges cost the independent room's capture point 0.29 dB (rendered from the origin
            against its panorama: 40.06 dB without, 39.77 with), and nothing may get worse there.
        layer_backs: the foreground's own hidden side behind its left and right silhouettes
            (:func:`worldgen.layers.geometry.foreground_backs`: the far side of a canopy, a
            trunk, a sofa arm, mirrored about the silhouette's depth) joins the world part,
            textured by the world's own texture and facing away from the capture point
            (:func:`back_part`). Default True.
        layer_back_triangles: its triangle budget, at most a quarter of ``layer_triangles``,
            whose share it takes (default 4000: 10000 cost the forest's capture point 0.08 dB, the
            background layers simplified 6k further; 4000 keeps it within 0.01 dB).
        layer_fins: fins behind the left and right silhouettes of near objects against the sky
            (:func:`silhouette_fins`: a crown's side continued back by its own width, at most to
            this multiple of the silhouette's depth), joined to the world part and taking their
            triangles from the world's budget; 0 = none. Default 2.5 (the forest's worst view at
            1 m: holes 0.84 -> 0.40 % of the view, at 2 m 2.12 -> 1.09 %).
        skirt: the world's skirt (SheetConfig.skirt,
            :func:`worldgen.mesh.sheet._skirt_backfill`): the foreground reaches to its
            silhouette pixels' outer edges at its own depth, textured as the world, and the backfill
            behind carries the background's colour. Default True here (the plain sheet's
            default is False): it is what lets the background layers drop the foreground's
            colour (``layer_silhouette_colour``, ``layer_guard_blend``). Applied only where the
            world's grid and the working grid are both the panorama's own pixel grid
            (``build_layered_sheet``; docs/walkable.md, round 10).
        layer_silhouette_colour: the background layers keep the panorama's colour behind the
            foreground's outermost pixel at every cut (:func:`keep_silhouette_colour`), so a
            capture-point ray that passes a silhouette pixel's centre (its vertex, on the
            world's border) onto the background shows what the world's backfill shows there.
            Default True; with ``skirt`` only where the silhouette's two sides are alike in
            colour (:func:`worldgen.mesh.sheet.contrast_silhouettes`), which the world leaves
            without a skirt: elsewhere such a
            ray meets the skirt, and the kept colour was a one-pixel copy of every outline on
            the background for a viewer who steps aside (docs/walkable.md, round 10).
        layer_guard_blend: share of the inpainted colour in the background layers' guard texels
            (hidden texels next to visible ones, :func:`layer_texture`) that border visible
            surface only; those next to visible sky keep the panorama's colour, as the sky rim
            reads them from the capture point. Default 1 (with the skirt no capture-point ray
            reads them); 0 = the panorama's colour, as before round 10.
        layer_grazing: the background part is cut by the sheet's grazing tests as the world is
            (default True). False leaves continued ground seen nearly edge-on whole, which a
            viewer who steps aside looks across (the fast preset: make demo's forest at 1 m,
            worst view 0.598 -> 0.48 % holes), but the uncut part also lies under one-pixel
            trunks' outlines, where capture-point rays graze the world (forest 2048, balanced:
            58.9 -> 58.5 dB from the capture point; fast forest 1024: 58.71 -> 58.50 dB).
    """

    walk_radius: float = 2.0
    layer_triangles: int = 40_000
    layer_collision_share: float = 0.25
    layer_work_width: int = 1024
    inpaint: str = "auto"
    fill_model: str = ""
    fill_prompt: str = ""
    fill_steps: int = 20
    layer_nested: bool = True
    sky_guard_blend: float = 1.0
    layer_ring: int = 3
    layer_steps: bool = False
    layer_backs: bool = True
    layer_back_triangles: int = 4_000
    layer_fins: float = 2.5
    skirt: bool = True
    layer_silhouette_colour: bool = True
    layer_guard_blend: float = 1.0
    layer_grazing: bool = True

    def __post_init__(self) -> None:
        if self.layer_triangles < 0 or not 0 <= self.layer_collision_share < 1:
            raise InputError("layer_triangles must be >= 0 and layer_collision_share in [0, 1)")
        if self.layer_back_triangles < 0:
            raise InputError(f"layer_back_triangles={self.layer_back_triangles} must be >= 0")
        if self.layer_fins and not self.layer_fins > 1:
            raise InputError(f"layer_fins={self.layer_fins} must be 0 (off) or a depth ratio > 1")
        if self.layer_ring < 1:
            raise InputError(f"layer_ring={self.layer_ring} must be >= 1 pixel")
        if not 0 <= self.sky_guard_blend <= 1:
            raise InputError(f"sky_guard_blend={self.sky_guard_blend} must lie in [0, 1]")
        if not 0 <= self.layer_guard_blend <= 1:
            raise InputError(f"layer_guard_blend={self.layer_guard_blend} must lie in [0, 1]")
        LayerConfig(walk_radius=self.walk_radius, work_width=self.layer_work_width, inpaint=self.inpaint)


def keep_silhouette_colour(layer: HiddenLayer, silhouette: np.ndarray, colour: np.ndarray) -> HiddenLayer:
    """``layer`` (and its ``nearer`` layer) with the panorama's ``colour`` kept at its hidden
    surface pixels in ``silhouette`` (the foreground's outermost pixels at cuts).

    The world's vertices sit on pixel centres, so a ray through a silhouette pixel's centre from
    the capture point runs along the world's border; it may pass it and meet what lies behind:
    the world's backfill, textured by direction (the foreground's colour there), or the
    background part just in front of it, which showed the inpainted background (a 512-column
    cabin rendered from the origin: 55.6 dB with all parts, 59.0 without the background; ten
    pixels along a table's top edge carried the loss). With the panorama's colour in those
    texels the two agree; a viewer who steps aside sees that one texel beside the silhouette in
    the foreground's colour, as the world's backfill shows it. Hidden sky is left alone (the
    sky rim's business, :func:`sky_rim`).

    Args:
        layer: the hidden layer, working grid [h, w].
        silhouette: [h, w] bool.
        colour: the working grid's panorama colour. [h, w, 3] float
    """
    from dataclasses import replace as _replace

    def keep(lay: HiddenLayer) -> HiddenLayer:
        m = lay.hidden & ~lay.sky & silhouette
        return _replace(lay, colour=np.where(m[..., None], colour, lay.colour).astype(np.float32))

    out = keep(layer)
    if layer.nearer is not None:
        out = _replace(out, nearer=keep(layer.nearer))
    return out


def _at_texels(grid: np.ndarray, Ht: int, Wt: int) -> np.ndarray:
    """``grid`` [h, w] sampled at the nearest cell of every texel of an Ht x Wt texture."""
    h, w = grid.shape[:2]
    rows = np.minimum((np.arange(Ht) * h) // Ht, h - 1)
    cols = np.minimum((np.arange(Wt) * w) // Wt, w - 1)
    return grid[rows[:, None], cols[None, :]]


def layer_texture(
    layer: HiddenLayer,
    texture: np.ndarray,
    guard_blend: float = 0.0,
    seen: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    surface_guard_blend: float | None = None,
) -> np.ndarray:
    """The world texture with the hidden pixels replaced by the inpainted background.

    Args:
        layer: the hidden layer (working grid h x w).
        texture: the world part's panorama texture. [Ht, Wt, 3] uint8
        guard_blend: share of the inpainted colour in the guard band (hidden texels next to
            visible ones); the rest is the panorama's colour (default 0: the capture-point view
            is unchanged).
        seen: the panorama's own first-surface distance at full resolution, metres (+inf sky),
            or None. [H, W] A working-grid pixel is hidden as a block (its nearest surface
            decides), so on a panorama wider than the grid a hidden block holds pixels the
            capture point sees as this layer itself (sky beside a crown's edge); with ``seen``
            those keep the panorama's colour: only pixels nearer than the layer are replaced.
        keep: full-resolution pixels whose hidden surface texels keep the panorama's colour
            (the foreground's outermost pixels: :func:`keep_silhouette_colour` at the
            panorama's own resolution, where the world's border vertices lie), or None. [H, W]
        surface_guard_blend: ``guard_blend`` for the guard texels that border no visible sky
            texel (None = ``guard_blend``). Those next to visible sky are read by the sky rim
            (:func:`sky_rim`) from the capture point; the others only by a ray that passes the
            world's border at a silhouette, which the world's skirt now stops.

    Returns:
        [Ht, Wt, 3] uint8: equal to ``texture`` outside the hidden region.
    """
    from PIL import Image

    Ht, Wt = texture.shape[:2]
    col = (np.clip(layer.colour, 0, 1) * 255 + 0.5).astype(np.uint8)
    up = np.asarray(Image.fromarray(col).resize((Wt, Ht), Image.BILINEAR))
    hid = _at_texels(layer.hidden, Ht, Wt)
    if seen is not None:
        with np.errstate(invalid="ignore"):
            hid &= _at_texels(seen, Ht, Wt) < 0.99 * _at_texels(layer.depth, Ht, Wt)
    if keep is not None:
        hid &= ~(_at_texels(keep, Ht, Wt) & ~_at_texels(layer.sky, Ht, Wt))

    def beside(m: np.ndarray) -> np.ndarray:
        out = m | np.roll(m, 1, 1) | np.roll(m, -1, 1)
        out[1:] |= m[:-1]
        out[:-1] |= m[1:]
        return out

    # The guard band: a bilinear lookup inside a visible pixel next to a silhouette reads the
    # hidden neighbour's texel too, so replacing that texel changes the capture-point view (the
    # street lost 1 dB with the whole hidden region replaced), while keeping the panorama's
    # colour there rims every silhouette with the foreground's colour once the viewer steps
    # aside (palms against the sky on the coast, thin poles before a wall). The sky dome takes
    # the inpainted colour (the sky rim, sky_rim, keeps the panorama's colour where the capture
    # point sees those texels, reading the background layers' guard texels next to visible
    # sky); the background layers' other guard texels are seen from the capture point only by
    # rays that pass the world's border, which the world's skirt stops (surface_guard_blend).
    vis = ~hid
    guard = hid & beside(vis)
    blend = np.full(hid.shape, float(guard_blend), np.float32)
    if surface_guard_blend is not None:
        vis_sky = vis & _at_texels(~np.isfinite(layer.depth), Ht, Wt)
        blend = np.where(beside(vis_sky), blend, np.float32(surface_guard_blend))
    out = np.where((hid & ~guard)[..., None], up, texture)
    b = blend[..., None]
    mix = (b * up.astype(np.float32) + (1.0 - b) * texture.astype(np.float32) + 0.5).astype(np.uint8)
    return np.where(guard[..., None], mix, out)


def _fit_rim(
    part: Mesh | None,
    rim: tuple[np.ndarray, np.ndarray],
    layer: HiddenLayer,
    texture: np.ndarray,
    config: LayeredSheetConfig,
    n_other: int,
    keep: np.ndarray | None = None,
) -> tuple[Mesh | None, tuple[np.ndarray, np.ndarray] | None]:
    """The background part simplified to leave room for the sky rim within ``layer_triangles``
    with the back and the fins (``n_other`` triangles), and the rim (None if it does not fit);
    :func:`with_rim` joins them.

    The rim's triangles come out of the layers' share: they are simplified again to leave room
    for it. Simplification with locked borders
    may stop above its target, so it is retried with a lower one; if the layers cannot make
    room (or the rim is empty), the rim is left out (None) and the dome keeps the guard band.
    """
    n_rim = len(rim[1])
    if not n_rim:
        return part, None
    room = config.layer_triangles - n_other - n_rim  # what the layers may keep
    target = config.layer_triangles
    for _ in range(3):
        if part is None or part.n_faces <= room:
            break
        target = min(target, room) - max(0, part.n_faces - target)
        if target <= 0:
            break
        part = background_part(layer, texture, replace(config, layer_triangles=target), keep=keep)
    if (part.n_faces if part is not None else 0) > room:
        return part, None
    return part, rim


def background_geometry(
    layer: HiddenLayer,
    config: SheetConfig,
    sky_radius: float = 0.0,
    edge_ratio: float = LayerConfig.edge_ratio,
    walk_radius: float = 2.0,
    ring: int = 1,
    steps: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] and CCW faces [F, 3] of the hidden background (plus its seam ring), unsimplified.

    The seam ring (:func:`seam_ring`) is ``ring`` pixels of the visible background next to the
    hidden one, so the layer reaches under the world's edge there. With ``steps`` the visible
    pixels on both sides of the small steps the world cuts (:func:`step_strips`) join it too,
    bridged (uncut) behind the world's cut.

    Hidden sky (behind silhouettes against the sky) is included at ``sky_radius`` (0 = left out).
    Depth steps under ``edge_ratio`` (the layer's occluding-edge ratio) are never cut. Vertices
    lie 0.5 % farther than the continued depth, far ones up to 20 % (what a viewer ``walk_radius``
    aside sees shift by a quarter pixel at most).
    """
    sky = layer.sky | (layer.seeds & ~np.isfinite(layer.depth)) if sky_radius > 0 else np.zeros(layer.shape, bool)
    valid = layer.surface | seam_ring(layer, ring, edge_ratio) | sky
    if steps:
        valid |= step_strips(layer, config.jump_min, edge_ratio, walk_radius)
    if not (layer.surface | (layer.sky & sky)).any() and not (steps and valid.any()):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    d = np.where(sky, sky_radius, np.where(valid, layer.depth, 1.0)).astype(np.float64)
    cfg = replace(SheetConfig(), **{k: getattr(config, k) for k in ("jump_min", "spike", "grazing_deg")})
    # No bridge test: far ground seen nearly edge-on steps by more than 10 % per row, so the
    # world part is cut there into a stack of steps facing the capture point, and the layer
    # continues the ground behind each step; the bridge test would cut that continuation into
    # steps too, whose cracks open as soon as the viewer moves (the spike and grazing tests
    # still cut). Coast at 1 m: holes 0.023 -> 0.015 %.
    cfg = replace(cfg, backfill=False, steep_ratio=0.0)
    # No grazing tests either (`layer_grazing=False`). They cut the world's edges seen within 1-4 degrees of their ray,
    # where measured depth smears a step into a rubber sheet; the layer's depth is not measured
    # but continued along planes, and an edge of it seen edge-on is ground or a wall continued
    # far behind an occluder, one surface (its real edges, between two continued backgrounds,
    # are steps over the edge ratio and still cut by the spike test). Cut there, the far ground
    # behind the trunks came apart row by row (the soft test alone cut it wherever two seeds'
    # planes disagreed by a few per cent): a moved viewer looked through the seams, and the
    # fast preset's 15k-triangle part, simplified without locked borders, opened them wider
    # (make demo's forest at 1 m, fast preset: worst view 0.598 -> 0.48 % of the view).
    # Off (`layer_grazing=False`) only in the fast preset: uncut, the background also lies
    # under the world's outline at one-pixel trunks, where a capture-point ray through a pixel
    # centre grazes the world's border and meets it a pixel off in its texture (forest 2048,
    # balanced: capture point 58.9 -> 58.5 dB, against the sheet's 58.95).
    if not getattr(config, "layer_grazing", True):
        cfg = replace(cfg, grazing_deg=0.0, grazing_soft_deg=0.0)
    # Steps under the layer's own edge ratio are not cut: the background is carried from pixel
    # to pixel only across neighbours within that ratio, so a smaller step is one surface
    # continued from two seeds whose planes disagree slightly (the floor behind a table
    # continued from seeds on either side of a leg), and the sheet's 2 % cut opened a crack
    # along every such seam that a moved viewer looks through (independent room at 1 m:
    # holes 0.58 -> 0.40 % of the view, most of them floor behind the table).
    cfg = replace(cfg, jump_min=max(cfg.jump_min, math.log(edge_ratio)))
    v, f, _ = sheet_geometry(d, valid, 1, cfg)
    # 0.5 % farther along its rays than measured: where the layer overlaps the world (its seam
    # ring, the world's one-cell backfill at cut edges, the sky dome's margin behind silhouettes)
    # the world and the dome win the depth test from the capture point instead of z-fighting
    # (measured: the room's capture-point PSNR fell 0.34 dB without it); 2 cm at 4 m is
    # invisible from a step away. Farther away the world is simplified much more coarsely (far
    # ridges seen at grazing angles lie up to ~15 % off their pixels' depths) and the layer won
    # there, showing its inpainted colour from the capture point (forest: 5 horizon pixels,
    # -0.3 dB); so it is pushed back as far as keeps it within a quarter pixel for a viewer
    # walk_radius aside (walk_radius x offset / distance), at most 20 % (inside the sky dome).
    dist = np.linalg.norm(v, axis=1)
    pixel = math.pi / layer.shape[0]
    push = np.clip(pixel * dist / (4.0 * max(walk_radius, 1e-3)), 0.005, 0.2)
    if sky_radius > 0:
        push = np.where(dist >= 0.999 * sky_radius, 0.005, push)  # hidden sky stays just behind the dome
    return v * (1.0 + push)[:, None], f


def step_strips(layer: HiddenLayer, jump_min: float, edge_ratio: float, walk_radius: float) -> np.ndarray:
    """Visible pixels on both sides of the small depth steps the world cuts: [h, w] bool.

    A step between ``exp(jump_min)`` (the sheet's cut threshold, 2 %) and ``edge_ratio`` (10 %)
    between two visible 4-neighbours is cut in the world, whose one-cell backfill then lies at
    the far side's depth. Such a step is mostly a riser the capture point sees edge-on (a rug's
    or a skirting board's edge, a book's spine in a shelf, a sofa's seam) rather than a gap, and
    a viewer who steps aside looks at it from the side through the cut: the rug's outline
    showed as a dotted crack on the floor (the interior at 0.5-2 m). The background part bridges
    it (it never cuts steps under ``edge_ratio``) from 0.5 % behind the world: invisible from
    the capture point, the riser's stand-in from aside. Only steps a viewer ``walk_radius``
    aside sees open by more than a pixel, ``walk_radius x (1 / d_near - 1 / d_far)`` radians,
    count (not the rows of far ground seen edge-on).
    """
    h = layer.shape[0]
    vis = ~layer.hidden & np.isfinite(layer.depth)
    d = np.where(vis, layer.depth, np.nan).astype(np.float64)
    lo, hi = math.exp(jump_min), edge_ratio
    pixel = math.pi / h
    out = np.zeros(layer.shape, bool)
    for axis in (0, 1):
        a, b = (d[:-1], d[1:]) if axis == 0 else (d, np.roll(d, -1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            near, far = np.fmin(a, b), np.fmax(a, b)
            ratio = far / near
            step = (ratio > lo) & (ratio < hi) & (walk_radius * (1.0 / near - 1.0 / far) > pixel)
        if axis == 0:
            out[:-1] |= step
            out[1:] |= step
        else:
            out |= step | np.roll(step, 1, 1)
    return out


def seam_ring(layer: HiddenLayer, width: int = 1, edge_ratio: float = LayerConfig.edge_ratio) -> np.ndarray:
    """The visible background the layer overlaps at its seam with the world: [h, w] bool.

    The layer's seeds (visible background next to occluding edges, with a surface) grown
    ``width`` - 1 pixels further into the visible background, each step only onto a 4-neighbour
    within ``edge_ratio`` of the depth it comes from (the same surface, never onto the occluder
    or across another depth edge; longitude wraps, rows stop at the poles).

    Why wider than one pixel: the layer's border along the seam is a staircase of pixel centres
    that ends exactly where the world's surface ends. Any border vertex the simplification moves
    (the fast preset's 15k-triangle budget cannot keep every border vertex locked) or any world
    edge that stops a cell short (cut tests, simplification) then leaves a crack between the
    two that a viewer who steps aside looks through. With a few pixels of overlap under the
    world the seam holds: the world hides the ring from the capture point (the layer lies
    behind it), and a crack would have to be wider than the ring to open.
    """
    ring = layer.seeds & np.isfinite(layer.depth) & ~layer.hidden
    if width <= 1 or not ring.any():
        return ring
    # Grown only from seeds beside a hidden pixel of this layer (the nested layer's seeds include
    # those of the pixels it leaves to the first layer).
    hid = layer.hidden
    beside = hid | np.roll(hid, 1, 1) | np.roll(hid, -1, 1)
    beside[1:] |= hid[:-1]
    beside[:-1] |= hid[1:]
    ring &= beside
    d = np.where(np.isfinite(layer.depth) & ~layer.hidden, layer.depth, np.nan).astype(np.float64)
    log_d = np.log(np.where(np.isfinite(d), d, 1.0))
    free = np.isfinite(d)
    lr = math.log(edge_ratio)
    for _ in range(width - 1):
        grow = np.zeros_like(ring)
        for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
            src = np.roll(ring, shift, axis)
            src_l = np.roll(log_d, shift, axis)
            if axis == 0:  # no wrap over the poles
                src[0 if shift == 1 else -1] = False
            grow |= src & (np.abs(src_l - log_d) < lr)
        ring = ring | (grow & free)
    return ring


def sky_rim(
    sky: np.ndarray, radius: float, occluders: list[tuple[np.ndarray, np.ndarray]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The sky dome's cells at silhouettes that the capture point sees: vertices [V, 3], CCW faces [F, 3].

    A cell is the square between four neighbouring pixel centres (longitude wraps; the caps
    beyond the first and last rows are left out); a rim cell has a visible sky pixel and a
    pixel without sky among its corners. Only in these cells does the capture point see the
    dome through a bilinear lookup that reads a texel of the foreground (the dome's guard band,
    :func:`layer_texture`), so only here must the dome keep the panorama's colour; elsewhere it
    may show the inpainted sky, and a viewer who steps aside then sees sky behind a palm instead
    of a rim in the palm's colour. Each rim cell is split into four half-pixel squares, and a
    square is left out when ``occluders`` (the world and the background, meshes seen from the
    origin) cover it from the capture point (its four corners, about 0.05 px inside, and its
    centre all hit them nearer than ``radius``): the world's fringe reaches half a pixel into the
    sky at every silhouette, so about half of each rim cell is behind it.

    Args:
        sky: visible sky pixels of the panorama. [H, W] bool
        radius: distance of the vertices from the capture point, metres.
        occluders: (vertices [V, 3], faces [F, 3]) meshes; None or empty keeps every square.

    Returns:
        (vertices [V, 3] float64 on their rays at ``radius``, faces [F, 3] int32).
    """
    from .. import _detmath as dm

    H, W = sky.shape
    nxt = np.roll(sky, -1, 1)
    any_sky = sky[:-1] | nxt[:-1] | sky[1:] | nxt[1:]
    all_sky = sky[:-1] & nxt[:-1] & sky[1:] & nxt[1:]
    ci, cj = np.nonzero(any_sky & ~all_sky)  # cell (i, j): pixels (i, j), (i, j+1), (i+1, j), (i+1, j+1)
    if not len(ci):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    # Half-pixel squares on the lattice y = 0.5 + a / 2, x = 0.5 + b / 2 (b modulo 2 W).
    a0 = (2 * ci[:, None] + np.array([0, 0, 1, 1])).reshape(-1)
    b0 = (2 * cj[:, None] + np.array([0, 1, 0, 1])).reshape(-1)
    keep = np.ones((len(ci), 4), bool)  # squares (top left, top right, bottom left, bottom right)
    if occluders:
        import open3d as o3d

        rs = o3d.t.geometry.RaycastingScene()
        for v, f in occluders:
            if len(f):
                rs.add_triangles(
                    o3d.core.Tensor(np.ascontiguousarray(v, np.float32)),
                    o3d.core.Tensor(np.ascontiguousarray(f, np.uint32)),
                )
        # Near each corner and the centre, off the square's diagonals and the lattice's simple
        # slopes: a world edge between lattice points never passes exactly through a sample, so
        # the hits do not depend on how Embree breaks ties on this CPU (same bytes everywhere).
        off = np.array([[0.061, 0.047], [0.053, 0.439], [0.443, 0.058], [0.437, 0.451], [0.229, 0.271]])
        y = 0.5 + a0[:, None] / 2 + off[None, :, 0]
        x = 0.5 + b0[:, None] / 2 + off[None, :, 1]
        d = dm.pixel_to_direction(x, y, W, H).reshape(-1, 3)
        rays = np.concatenate([np.zeros_like(d), d], 1).astype(np.float32)
        t = rs.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy().reshape(-1, len(off))
        keep = ~(t < 0.99 * radius).all(1).reshape(-1, 4)
    # Kept squares merged into at most two rectangles per cell (4 triangles): a whole cell, a
    # half (two squares side by side), a half plus a square (three), or single squares. Each
    # rectangle is (top, left, bottom, right) on the lattice, relative to the cell's corner.
    k00, k01, k10, k11 = keep.T
    n = keep.sum(1)
    top, bot, lef, rig = k00 & k01, k10 & k11, k00 & k10, k01 & k11
    rects = [
        (n == 4, (0, 0, 2, 2)),
        ((n == 2) & top, (0, 0, 1, 2)),
        ((n == 2) & bot, (1, 0, 2, 2)),
        ((n == 2) & lef, (0, 0, 2, 1)),
        ((n == 2) & rig, (0, 1, 2, 2)),
        ((n == 3) & top, (0, 0, 1, 2)),
        ((n == 3) & ~top, (1, 0, 2, 2)),
        ((n == 3) & ~k11, (1, 0, 2, 1)),
        ((n == 3) & ~k10, (1, 1, 2, 2)),
        ((n == 3) & ~k01, (0, 0, 1, 1)),
        ((n == 3) & ~k00, (0, 1, 1, 2)),
    ]
    single = (n == 1) | ((n == 2) & ~(top | bot | lef | rig))
    for k, (da, db) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        rects.append((single & keep[:, k], (da, db, da + 1, db + 1)))
    q = np.concatenate(
        [np.stack([2 * ci[m] + r[0], 2 * cj[m] + r[1], 2 * ci[m] + r[2], 2 * cj[m] + r[3]], 1) for m, r in rects]
    )
    if not len(q):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    qa0, qb0, qa1, qb1 = q.T
    qb0, qb1 = qb0 % (2 * W), qb1 % (2 * W)
    corners = np.stack([qa0 * 2 * W + qb0, qa0 * 2 * W + qb1, qa1 * 2 * W + qb0, qa1 * 2 * W + qb1], 1)
    used, inv = np.unique(corners, return_inverse=True)
    inv = inv.reshape(-1, 4)
    la, lb = np.divmod(used, 2 * W)
    v = dm.pixel_to_direction(0.5 + lb / 2, 0.5 + la / 2, W, H) * radius
    f = np.concatenate([inv[:, [0, 2, 1]], inv[:, [1, 2, 3]]]).astype(np.int32)
    # CCW seen from the centre (the faces' normals point at it).
    p, q, r = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(q - p, r - p), p) > 0
    f[flip] = f[flip][:, [0, 2, 1]]
    return v, f


def with_rim(
    part: Mesh | None, rim: tuple[np.ndarray, np.ndarray], layer: HiddenLayer, texture: np.ndarray
) -> Mesh | None:
    """``part`` (the background, or None) with the :func:`sky_rim` faces added, textured by the
    first layer's band of its atlas (:func:`layer_texture` with the guard band's panorama colour)."""
    v, f = rim
    if not len(f):
        return part
    n_bands = 1 if part is None else part.texture.shape[0] // texture.shape[0]
    v2, f2, uv, n2 = equirect_uvs(v, f, -(v / np.linalg.norm(v, axis=1, keepdims=True)))
    uv = uv.copy()
    uv[:, 1] /= n_bands
    if part is None:
        return Mesh(v2, f2, n2, uv.astype(np.float32), layer_texture(layer, texture, 0.0))
    return Mesh(
        np.concatenate([part.vertices, v2]),
        np.concatenate([part.faces, f2 + part.n_vertices]).astype(np.int32),
        np.concatenate([part.normals, n2]),
        np.concatenate([part.uvs, uv]).astype(np.float32),
        part.texture,
    )


def background_part(
    layer: HiddenLayer,
    texture: np.ndarray,
    config: LayeredSheetConfig,
    sky_radius: float = 0.0,
    keep: np.ndarray | None = None,
) -> Mesh | None:
    """The textured "background" Mesh, at most ``config.layer_triangles`` triangles (None if empty).

    ``keep``: full-resolution pixels whose texels keep the panorama's colour (:func:`layer_texture`).

    The layer and, behind nested occluders, its ``nearer`` layer are triangulated separately
    (the budget shared in proportion to their triangles) and merged into one mesh whose texture
    is an atlas: each layer's texture (:func:`layer_texture`) stacked top to bottom, its UVs'
    v scaled into its own band. Hidden sky is part of it at ``sky_radius`` (just behind the
    sky dome, which keeps the panorama's own texture): 0 leaves it out.
    """
    layers = [layer] + ([layer.nearer] if layer.nearer is not None else [])
    geoms = [
        background_geometry(
            lay,
            config,
            sky_radius if k == 0 else 0.0,
            walk_radius=config.walk_radius,
            ring=config.layer_ring,
            steps=k == 0 and config.layer_steps,
        )
        for k, lay in enumerate(layers)
    ]
    total = sum(len(f) for _, f in geoms)
    if not total or not config.layer_triangles:
        return None
    n_layers = len(layers)
    verts, faces, uvs, normals, textures = [], [], [], [], []
    offset = 0
    for k, ((v, f), lay) in enumerate(zip(geoms, layers)):
        budget = max(1, config.layer_triangles * len(f) // total)
        if len(f) > budget:
            v, f = simplify(v, f, budget, preserve_border=True, method="meshopt")
        if len(f) > budget:
            # Locked borders can stall above the budget (many small islands behind small steps);
            # meshoptimizer without the lock still keeps the borders' shape.
            v, f = simplify(v, f, budget, preserve_border=False, method="meshopt")
        textures.append(layer_texture(lay, texture, 0.0, keep=keep, surface_guard_blend=config.layer_guard_blend))
        if not len(f):
            continue
        v2, f2, uv, n2 = equirect_uvs(v, f, vertex_normals(v, f))
        uv = uv.copy()
        uv[:, 1] = (uv[:, 1] + k) / n_layers
        verts.append(v2)
        faces.append(f2 + offset)
        uvs.append(uv)
        normals.append(n2)
        offset += len(v2)
    if not faces:
        return None
    return Mesh(
        np.concatenate(verts),
        np.concatenate(faces).astype(np.int32),
        np.concatenate(normals),
        np.concatenate(uvs).astype(np.float32),
        np.concatenate(textures, 0),
    )


def back_part(layer: HiddenLayer, config: LayeredSheetConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Vertices [V, 3] and faces [F, 3] of the foreground's own back (``layer.back``), or None.

    Triangulated as the background layers are (:func:`background_geometry`: the sheet's cut
    rules, 0.5 % behind its depth so the world's front wins at the silhouette where the two
    meet), simplified to ``layer_back_triangles`` (at most a quarter of ``layer_triangles``,
    whose share it takes), and wound to face away from the capture
    point: a viewer who steps aside sees it from outside the object, as its true back, and an
    engine culls it from the capture point, where the front hides it anyway.
    """
    budget = min(config.layer_back_triangles, config.layer_triangles // 4)
    if layer.back is None or not budget:
        return None
    v, f = background_geometry(layer.back, config, 0.0, walk_radius=config.walk_radius, ring=1)
    if not len(f):
        return None
    if len(f) > budget:
        v, f = simplify(v, f, budget, preserve_border=True, method="meshopt")
    if len(f) > budget:
        v, f = simplify(v, f, budget, preserve_border=False, method="meshopt")
    if not len(f):
        return None
    return v, f[:, [0, 2, 1]].astype(np.int32)


def behind_world(
    vertices: np.ndarray,
    faces: np.ndarray,
    occluders: list[Mesh],
    shape: tuple[int, int],
    margin: float = 0.005,
    max_push: float = 1.15,
    passes: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Push hidden geometry back along its rays until what the capture point sees hides it.

    What the layers continue is hidden, so from the capture point it must never be drawn in
    front of the world or the sky dome. It is triangulated from its own depths, 0.5 % farther
    (:func:`background_geometry`), but both it and the world are simplified, and where the
    world's simplified surface lies a few percent farther than the pixels' depths (far ground
    seen edge-on, a foreground's border) the continuation came out in front of it (forest 1024
    from the capture point: ~350 pixels of inpainted ground and ~200 of a trunk's back drawn
    over the world, 58.3 -> 52.0 dB against the sheet).

    Three rays through every pixel of an H x 2H panorama, each a small irregular fraction of a
    pixel off its centre (so that none passes exactly through the world's vertices, which lie
    on the centres, and the hits do not hang on Embree's tie-breaking), are cast against the hidden geometry and
    against the occluders. A face hit nearer than ``(1 + margin)`` x the occluders' hit moves
    out along its vertices' rays (directions, so UVs, unchanged) by the largest ratio its
    pixels need; a face that would need more than ``max_push`` lies in front of something much
    farther (a back's fringe past a silhouette against the sky) and is dropped. Repeated
    ``passes`` times, as a pushed vertex moves its other faces too.

    Args:
        vertices: the hidden geometry, metres. [V, 3]
        faces: its triangles. [F, 3]
        occluders: the parts the capture point sees (the world, the sky dome).
        shape: (H, W) of the sampling grid, the panorama's.
        margin: how far behind the occluders' hit, relative.
        max_push: the largest outward scale applied to a face; beyond it the face is dropped.
        passes: push-and-recast rounds.

    Returns:
        (vertices [V, 3] float64, faces [F', 3] int32: the faces kept).
    """
    import open3d as o3d

    from .. import _detmath as dm

    v = np.asarray(vertices, np.float64).copy()
    f = np.asarray(faces, np.int32)
    occ = [m for m in occluders if m is not None and m.n_faces]
    if not len(f) or not occ:
        return v, f
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W]
    # Three rays per pixel: one 1/50 px off its centre (where render_from_origin and a pixel's
    # footprint look; the world and this geometry cross in strips a pixel thin) and two a
    # quarter pixel out on either side.
    off = np.array([[0.017, 0.023], [0.263, 0.311], [-0.287, -0.241]])
    d = dm.pixel_to_direction(
        xx[None] + 0.5 + off[:, 1, None, None], yy[None] + 0.5 + off[:, 0, None, None], W, H
    ).reshape(-1, 3)
    rays = o3d.core.Tensor(np.concatenate([np.zeros_like(d), d], 1).astype(np.float32))

    def scene(meshes):
        rs = o3d.t.geometry.RaycastingScene()
        for vv, ff in meshes:
            rs.add_triangles(
                o3d.core.Tensor(np.ascontiguousarray(vv, np.float32)),
                o3d.core.Tensor(np.ascontiguousarray(ff, np.uint32)),
            )
        return rs

    t_occ = scene([(m.vertices, m.faces) for m in occ]).cast_rays(rays)["t_hit"].numpy().astype(np.float64)
    for _ in range(passes):
        hit = scene([(v, f)]).cast_rays(rays)
        t = hit["t_hit"].numpy().astype(np.float64)
        bad = np.isfinite(t) & np.isfinite(t_occ) & (t < t_occ * (1.0 + margin))
        if not bad.any():
            break
        prim = hit["primitive_ids"].numpy().astype(np.int64)[bad]
        need = np.zeros(len(f))
        # Pushed to twice the margin: a face's neighbours and the rays between the samples then
        # clear it too (to the margin exactly, a forest took eight rounds to settle).
        np.maximum.at(need, prim, t_occ[bad] * (1.0 + 2.0 * margin) / t[bad])
        # Snapped up to steps of 1/512: the hit distances come from Embree's float32 kernels,
        # chosen per CPU, and their last bits must not reach the mesh's bytes.
        need = np.ceil(need * 512.0) / 512.0
        drop = need > max_push
        scale = np.ones(len(v))
        push = (need > 0) & ~drop
        np.maximum.at(scale, f[push].reshape(-1), np.repeat(need[push], 3))
        v *= scale[:, None]
        f = f[~drop]
        if not len(f):
            break
    return v, f


def _facing(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Cosine between each face's normal (right-handed corner order) and the ray from the
    capture point to its first corner: > 0 faces away, 0 edge-on. [F]"""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return np.einsum("ij,ij->i", n, tri[:, 0]) / np.maximum(
        np.linalg.norm(n, axis=1) * np.linalg.norm(tri[:, 0], axis=1), 1e-30
    )


def _compact(mesh: Mesh, faces: np.ndarray) -> Mesh:
    """``mesh`` with only ``faces`` [F, 3] and the vertices (and their attributes) they use."""
    used, inv = np.unique(faces.reshape(-1), return_inverse=True)

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[used]

    return Mesh(
        mesh.vertices[used],
        inv.reshape(-1, 3).astype(np.int32),
        pick(mesh.normals),
        pick(mesh.uvs),
        mesh.texture,
        pick(mesh.vertex_colors),
    )


def with_back(world: Mesh, back: tuple[np.ndarray, np.ndarray]) -> Mesh:
    """``world`` with the :func:`back_part` faces added, textured by the world's own texture
    (UVs: the panorama coordinates of their rays, the world's mapping)."""
    v, f = back
    v2, f2, uv, n2 = equirect_uvs(v, f, vertex_normals(v, f))
    return Mesh(
        np.concatenate([world.vertices, v2]),
        np.concatenate([world.faces, f2 + world.n_vertices]).astype(np.int32),
        np.concatenate([world.normals, n2]) if world.normals is not None else None,
        np.concatenate([world.uvs, uv]).astype(np.float32),
        world.texture,
    )


def walk_sky(sky: np.ndarray, depth: np.ndarray, walk_radius: float, max_deg: float = 45.0) -> np.ndarray:
    """The sky pixels widened by what a viewer ``walk_radius`` aside may see past the nearest frame around them.

    Through a window the capture point sees a patch of sky; a viewer r metres aside sees, past a
    frame d metres away, about atan(r / d) more in every direction. The dome is widened by that
    angle (the nearest surface next to the sky decides, at most ``max_deg``), so rays through
    an opening at new angles meet the dome instead of nothing (the independent room at 1 m:
    0.56 % of the rays hit nothing at all).

    Args:
        sky: sky pixels (visible and hidden). [H, W] bool
        depth: ray distance of the visible surface, metres (+inf for sky). [H, W] float
        walk_radius: metres.
        max_deg: widest widening, degrees.

    Returns:
        [H, W] bool, a superset of ``sky``.
    """
    from scipy import ndimage

    H, W = sky.shape
    if not sky.any() or sky.all() or walk_radius <= 0:
        return sky
    near = ~sky & (np.roll(sky, 1, 1) | np.roll(sky, -1, 1))
    near[1:] |= ~sky[1:] & sky[:-1]
    near[:-1] |= ~sky[:-1] & sky[1:]
    d = depth[near & np.isfinite(depth)]
    if not len(d):
        return sky
    ang = min(np.arctan(walk_radius / max(float(d.min()), 1e-3)), np.radians(max_deg))
    r = ang / (np.pi / H)  # in pixels (one row = pi / H radians)
    pad = min(W, int(np.ceil(r)) + 1)
    wrapped = np.concatenate([sky[:, -pad:], sky, sky[:, :pad]], 1)  # longitude wraps
    dist = ndimage.distance_transform_edt(~wrapped)[:, pad : pad + W]
    return sky | (dist <= r)


def _on_grid(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` [H, W] bool on the layer's working grid ``shape`` (:func:`worldgen.layers.working_grid`'s
    blocks; a block is set when any of its pixels is). [h, w] bool"""
    h, w = shape
    H, W = mask.shape
    if (h, w) == (H, W):
        return mask
    s = max(1, W // w)
    return mask[: h * s, : w * s].reshape(h, s, w, s).any((1, 3))


def merge_meshes(a: Mesh | None, b: Mesh | None) -> Mesh | None:
    """Untextured union of two meshes (vertices, faces and normals only)."""
    if a is None or b is None:
        return a if b is None else b
    v = np.concatenate([a.vertices, b.vertices])
    f = np.concatenate([a.faces, b.faces + a.n_vertices])
    n = None if a.normals is None or b.normals is None else np.concatenate([a.normals, b.normals])
    return Mesh(v, f, n)


def build_layered_sheet(
    panorama: Panorama,
    depth: DepthMap,
    config: LayeredSheetConfig = LayeredSheetConfig(),
    semantics: SemanticLayers | None = None,
    eye_height: float = 1.6,
    seed: int = 0,
) -> MeshScene:
    """The sheet with a textured "background" part behind its depth edges (see the module docstring).

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres (+inf = sky).
        config: see :class:`LayeredSheetConfig` and :class:`worldgen.mesh.sheet.SheetConfig`.
        semantics: used only to keep pixels of class "backdrop" (a photo world's scenery) out of
            the collision part, the background's too.
        eye_height: capture height, metres (reported by the sheet).
        seed: inpainting seed.

    Returns:
        MeshScene with parts "world", "background" (when anything is hidden), "sky" (if any),
        "collision" (if budgeted); the report gains a "layers" entry.
    """
    if config.walk_radius <= 0:
        return build_sheet(panorama, depth, config, semantics, eye_height)
    if config.max_triangles:
        # The hidden geometry takes at most half of the one budget (a small max_triangles with
        # the preset's layer_triangles would otherwise leave the world nothing).
        config = replace(config, layer_triangles=min(config.layer_triangles, config.max_triangles // 2))
    t0 = time.perf_counter()
    layer = build_layers(
        panorama,
        depth,
        LayerConfig(
            walk_radius=config.walk_radius,
            work_width=config.layer_work_width,
            inpaint=config.inpaint,
            **fill_options(config),
            nested=config.layer_nested,
            backs=config.layer_backs and config.layer_back_triangles > 0,
            # Complete behind every step the sheet may cut (its 2 % jump), not only behind the
            # layer's 10 % occluding edges (independent room at 1 m: holes 0.40 -> 0.27 %).
            step_ratio=min(math.exp(config.jump_min), LayerConfig.edge_ratio) if config.jump_min > 0 else 0.0,
        ),
        seed=seed,
    )
    from ..layers.geometry import occluding_edges
    from ..layers.layered import working_grid

    wcol, wd, wsky = working_grid(panorama, depth, config.layer_work_width)
    # On a panorama wider than the working grid a hidden block holds visible pixels next to a
    # silhouette, and the capture point's rays there meet the background part whatever the
    # world's skirt does; on a world grid coarser than the panorama (the fast preset) the skirt
    # does not reach every silhouette pixel's centre. There the background keeps the
    # foreground's colour at silhouettes and in its guard band, as before round 10 (from the
    # capture point: a 512-column forest on a 256-column grid 58.87 dB, 58.04 with the
    # background's colour there; make demo's forest 58.50 dB, 55.41; docs/walkable.md).
    fine = wd.shape == depth.shape and math.ceil(depth.shape[1] / config.grid_width) == 1
    if not fine:
        # Nor does the world get its skirt there: with the background's outline kept it would
        # only cost the world's budget (the quality preset's forest at 2048 columns, layers on
        # 1024, from the capture point: 46.15 -> 44.91 dB with it).
        config = replace(config, layer_guard_blend=0.0, skirt=False)
    keep = None
    if config.layer_silhouette_colour:
        ratio = min(math.exp(config.jump_min), LayerConfig.edge_ratio)
        fg, _ = occluding_edges(wd, ~wsky, ratio)
        if config.skirt:  # (off above where the grids are not fine)
            # Where the world has a skirt (the silhouette's two sides differ in colour) the
            # capture point's rays through the silhouette pixels meet it, and the kept colour
            # would only be the foreground's outline on the background for a viewer aside.
            fg &= ~contrast_silhouettes(wd, wcol, ratio)
        layer = keep_silhouette_colour(layer, fg, wcol)
        if wd.shape != depth.shape:
            # On a panorama wider than the working grid the world's border vertices lie on the
            # panorama's own pixel centres: its silhouette pixels keep their colour too (snowy
            # mountains at 2048 from the origin: the inpainted background showed at ~450
            # pixel-centre rays along silhouettes).
            full = np.where(depth.valid, depth.depth, np.inf)
            keep, _ = occluding_edges(full, depth.valid, ratio)
    texture = panorama_texture(panorama, config.texture_width)
    # The sheet's sky dome radius (build_sheet's rule): hidden sky continues just behind it.
    far = float(depth.depth[depth.valid].max()) if depth.valid.any() else 0.0
    sky_r = (config.sky_radius if config.sky_radius > 0 else max(10.0, 1.5 * far)) if config.sky else 0.0
    # The hidden geometry (the foreground's back, the fins, the background layers and the sky
    # rim) is built first, within layer_triangles; the world then gets what it leaves of
    # max_triangles, so the exported total stays within the one budget. With the texture's
    # colour in the world's simplification error (SheetConfig.colour_weight) the world's
    # capture-point view hardly depends on those 10-13 % (forest 2048: 300k 58.97 dB, 262k
    # 58.89); without it the same cut cost 1.4 dB, and the layers used to come on top.
    back = back_part(layer, config)
    fins = None
    if config.layer_fins > 1:
        fins = silhouette_fins(
            wd, ~wsky, length_ratio=config.layer_fins, walk_radius=config.walk_radius, edge_ratio=LayerConfig.edge_ratio
        )
    n_back = (len(back[1]) if back is not None else 0) + (len(fins[1]) if fins is not None else 0)
    part = background_part(
        layer, texture, replace(config, layer_triangles=max(0, config.layer_triangles - n_back)), keep=keep
    )
    rim_wanted = bool(config.sky and depth.sky.any() and sky_r > 0 and far > 0 and layer.hidden.any())
    rim_wanted &= config.sky_guard_blend > 0
    rim_radius = min(RIM_REACH * far, sky_r / RIM_GAP)
    world_budget = config.max_triangles
    if config.max_triangles:
        # The rim's size before the world exists: the cells left after the background alone
        # covers its share (the world covers about half of each cell more, so this is an upper
        # bound); _fit_rim below fits the real rim into what the world leaves.
        occ0 = [(part.vertices, part.faces)] if part is not None else None
        n_rim = len(sky_rim(depth.sky, rim_radius, occ0)[1]) if rim_wanted else 0
        n_built = n_back + (part.n_faces if part is not None else 0)
        # (Simplification with locked borders may stop above its target: what was built counts.)
        n_hidden = max(n_built, min(config.layer_triangles, n_built + n_rim))
        world_budget = max(1, config.max_triangles - n_hidden)
    coll_bg = int(config.collision_triangles * config.layer_collision_share) if part is not None else 0
    scene = build_sheet(
        panorama,
        depth,
        replace(config, max_triangles=world_budget, collision_triangles=config.collision_triangles - coll_bg),
        semantics,
        eye_height,
    )
    parts = dict(scene.parts)
    out: dict[str, Mesh] = {}
    rim = None
    # What the world leaves of the one budget for the hidden geometry.
    room = config.layer_triangles
    if config.max_triangles:
        room = min(room, config.max_triangles - (parts["world"].n_faces if "world" in parts else 0))
    if "sky" in parts and rim_wanted:
        # The dome's cells at silhouettes that the capture point sees, with the panorama's
        # colour (sky_rim), so that the dome behind them may show the inpainted sky where a
        # viewer who steps aside looks past a silhouette (sky_guard_blend).
        occ = [(m.vertices, m.faces) for m in (parts.get("world"), part) if m is not None]
        rim = sky_rim(depth.sky, rim_radius, occ)
        part, rim = _fit_rim(part, rim, layer, texture, replace(config, layer_triangles=room), n_back, keep=keep)
    if "world" in parts:
        # Hidden geometry behind what the capture point sees (behind_world); the back's faces
        # that simplification folded towards the capture point are dropped (it is wound to face
        # away; a folded face would be drawn from there in front of the world's silhouette).
        seen = [parts["world"], parts.get("sky")]
        if part is not None:
            bv, bf = behind_world(part.vertices, part.faces, seen, depth.shape)
            # Not edge-on: a face whose plane passes through the capture point (its corners on
            # one pixel column's rays, where simplification collapsed along a column) is a strip
            # along those rays that a pixel-centre ray in its plane may hit in float32, showing
            # its texture from the capture point (forest 1024, fast preset: 300 of 13k faces);
            # the back drops them too.
            bf = bf[np.abs(_facing(bv, bf)) > 1e-3]
            part = _compact(replace(part, vertices=bv), bf) if len(bf) else None
        if back is not None:
            bv, bf = behind_world(*back, seen, depth.shape)
            cos = _facing(bv, bf)
            # Facing away, and not edge-on: a face whose plane passes through the capture point
            # (all three corners on one column's rays, where simplification runs along a
            # silhouette) is hit by rays in that plane in float32, and pushing along rays
            # cannot move it out of it (forest 1024: a trunk's back drawn over the sky).
            away = cos > 1e-3
            bf = bf[away]
            used, inv = np.unique(bf.reshape(-1), return_inverse=True)
            back = (bv[used], inv.reshape(-1, 3).astype(np.int32)) if len(bf) else None
    if rim is not None:
        # The rim is the dome's own cells the capture point sees: it joins after the push.
        part = with_rim(part, rim, layer, texture)
    if "world" in parts:
        out["world"] = parts.pop("world")
        if back is not None:
            out["world"] = with_back(out["world"], back)
        if fins is not None:
            out["world"] = with_fins(out["world"], fins)
    if part is not None:
        out["background"] = part
    if "sky" in parts and sky_r > 0:
        # The sky continues behind silhouettes against it: widen the dome over those pixels,
        # textured with the inpainted sky, and further by what a viewer within the walk radius
        # sees past the nearest frame around the sky (walk_sky), so that no ray through an
        # opening meets nothing at all.
        H, W = depth.shape
        h, w = layer.shape
        rows = np.minimum((np.arange(H) * h) // H, h - 1)
        cols = np.minimum((np.arange(W) * w) // W, w - 1)
        sky = depth.sky | layer.sky[rows[:, None], cols[None, :]]
        sky = walk_sky(sky, np.where(depth.valid, depth.depth, np.inf), config.walk_radius)
        tex = layer_texture(
            layer,
            texture,
            config.sky_guard_blend if rim is not None else 0.0,
            seen=np.where(depth.valid, depth.depth, np.inf),
        )
        dome = sky_dome(sky, sky_r, config.sky_grid_width, tex)
        # Closed behind everything: a coarse whole sphere just outside the dome, textured the
        # same, so that a ray through a crack the walk opens (behind a table edge, a sofa arm)
        # shows the panorama's colour of its direction instead of nothing, as an engine's
        # skybox would (the independent room at 1 m: 0.48 % of the rays met nothing). From the
        # capture point the world and the dome hide it.
        H, W = depth.shape
        shell = sky_dome(np.ones((H, W), bool), 1.01 * sky_r, max(16, config.sky_grid_width // 4), tex)
        parts["sky"] = Mesh(
            np.concatenate([dome.vertices, shell.vertices]),
            np.concatenate([dome.faces, shell.faces + dome.n_vertices]).astype(np.int32),
            np.concatenate([dome.normals, shell.normals]),
            np.concatenate([dome.uvs, shell.uvs]).astype(np.float32),
            tex,
        )
    if coll_bg and "collision" in parts:
        lv = layer.surface | (layer.seeds & np.isfinite(layer.depth))
        # A photo world's backdrop (class "backdrop", worldgen.stages.photo) is scenery, not
        # ground to walk on: the world's collision leaves it out (build_sheet), and so does the
        # background's (before, a photo world got collision behind the camera from the layer).
        lv &= ~_on_grid(backdrop_mask(semantics, depth.shape), layer.shape)
        d = np.where(lv, layer.depth, 1.0).astype(np.float64)
        bg_coll = collision_from_grid(d, lv, coll_bg, replace(SheetConfig(), backfill=False))
        parts["collision"] = merge_meshes(parts["collision"], bg_coll)
    out.update(parts)
    report = dict(scene.report)
    report["layers"] = {
        **layer.report,
        "background_triangles": part.n_faces if part is not None else 0,
        "back_triangles": len(back[1]) if back is not None else 0,
        "fin_triangles": len(fins[1]) if fins is not None else 0,
        **({"sky_rim_triangles": len(rim[1])} if rim is not None else {}),
        "world_triangle_budget": world_budget,
        "seconds_total": round(time.perf_counter() - t0, 3),
    }
    report["parts"] = {k: {"vertices": m.n_vertices, "triangles": m.n_faces} for k, m in out.items()}
    report["triangles_total"] = int(sum(m.n_faces for k, m in out.items() if k in ("world", "background")))
    return MeshScene(out, report)


__all__ = ["LayeredSheetConfig", "background_part", "build_layered_sheet", "layer_texture", "merge_meshes", "walk_sky"]


def silhouette_fins(
    depth: np.ndarray,
    surface: np.ndarray,
    *,
    length_ratio: float,
    walk_radius: float,
    edge_ratio: float = LayerConfig.edge_ratio,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Fins behind the left and right silhouettes of near objects (a volume prior), or None.

    A near crown or facade has volume: about as deep as it is wide. A viewer who steps outward
    past its silhouette looks along its side, and what lies right behind the silhouette there
    (a tree hidden entirely behind a near canopy, with sky on both sides of it in the panorama)
    is nothing the panorama shows; the mesh showed the sky dome (the forest's worst views at
    1-2 m). A fin is a strip on the silhouette pixel's own centre ray, one pixel tall, from just
    behind the silhouette's depth ``d_s`` back by the width of the pixel's row run (the object's
    width in that row, in metres, the distance between its left and right silhouettes), at
    most to ``length_ratio x d_s`` and never past the surface seen beside the silhouette (over
    ``edge_ratio`` farther), its far end tilted a further quarter pixel into the object. From
    the capture point it shows its back (culled) behind the silhouette pixel; from aside it is
    the object's side, one colour per fin: the silhouette pixel's own (UVs at its centre, so
    no texel of the sky beside it is blended in). Faces point outward, away from the object:
    an engine culls a fin for a viewer on the inner side, whom the object hides it from anyway.
    Only silhouettes within 10 x ``walk_radius`` (the foreground backs' bound).

    Args:
        depth: the working grid's first-surface distance, metres (+inf sky). [h, w]
        surface: finite surface pixels. [h, w] bool
        length_ratio: the farthest a fin reaches, as a multiple of ``d_s`` (> 1).
        walk_radius: metres.
        edge_ratio: depth ratio of a silhouette.

    Returns:
        (vertices [V, 3] float32, faces [F, 3] int32, uvs [V, 2] float32: the panorama
        coordinates of each fin's silhouette pixel centre).
    """
    from ..geometry.equirect import pixel_to_direction

    h, w = depth.shape
    d = np.where(surface, depth, np.inf).astype(np.float64)
    start, stop = _row_runs(d, edge_ratio)
    run = (stop - start) % w + 1  # pixels in each pixel's row run
    rows = np.arange(h)[:, None]
    lat = math.pi / 2 - math.pi * (np.arange(h) + 0.5) / h
    col_rad = (2 * math.pi / w) * np.cos(lat)[:, None]  # radians per column in each row
    verts, faces, uvs = [], [], []
    for side in (1, -1):  # 1: right silhouette (the neighbour at x + 1 is farther)
        nb = np.roll(d, -side, 1)
        with np.errstate(invalid="ignore"):
            sil = surface & np.isinf(nb) & (d <= 10.0 * walk_radius)
            # Objects only: the run's other end is a silhouette too (farther, or sky, beyond
            # it), so it stands free of what lies behind it on both sides (a crown, a trunk).
            # The edge of a wall at a window is not: the wall ends at a corner or at something
            # nearer, and a fin there would hide the outdoors continued behind the wall.
            other = stop if side == -1 else start
            beyond = np.roll(d, side, 1)[rows, other]
            sil &= beyond > edge_ratio * d[rows, other]
        ys, xs = np.nonzero(sil)
        if not len(ys):
            continue
        ds = d[ys, xs]
        width = run[ys, xs] * col_rad[ys, 0] * ds
        far = np.minimum(np.minimum(ds + width, length_ratio * ds), nb[ys, xs] / 1.01)
        keep = far > ds * 1.02
        ys, xs, ds, far = ys[keep], xs[keep], ds[keep], far[keep]
        if not len(ys):
            continue
        # A quarter pixel inside the silhouette pixel's centre, not on it: a fin is edge-on from
        # the capture point, and on the centre's plane of longitude it held the rays of that
        # pixel column, which a ray caster may report as hits anywhere in the plane (the forest
        # rendered from the origin through every pixel centre: 58 dB -> 29 dB). Inside, the
        # world's silhouette pixel covers it from the capture point.
        # The far end a further quarter pixel inside: the fin is then no longer edge-on but
        # tilted into the object, so the capture point sees its back (culled by engines) behind
        # the world's silhouette pixel. Edge-on, it lay on a pixel-centre plane of any panorama
        # twice the working grid's width (x + 0.25 on the grid = a centre at 2x): the forest at
        # 2048 columns from the origin read 35.3 dB against the sheet's 56.2.
        cx = xs + 0.5 - 0.25 * side
        cf = xs + 0.5 - 0.5 * side
        top = pixel_to_direction(cx, ys.astype(np.float64), w, h)
        bot = pixel_to_direction(cx, ys + 1.0, w, h)
        top_f = pixel_to_direction(cf, ys.astype(np.float64), w, h)
        bot_f = pixel_to_direction(cf, ys + 1.0, w, h)
        near = ds * 1.005
        # Four corners per fin: top near, bottom near, bottom far, top far.
        q = np.stack([top * near[:, None], bot * near[:, None], bot_f * far[:, None], top_f * far[:, None]], 1).reshape(
            -1, 3
        )
        base = 4 * np.arange(len(ys))[:, None]
        tri = np.concatenate([base + np.array([0, 1, 2]), base + np.array([0, 2, 3])], 0)
        # Face outward: the normal toward the silhouette's far side (the tangent of increasing
        # column for a right silhouette, of decreasing column for a left one).
        out = pixel_to_direction(cx + side, ys + 0.5, w, h) - pixel_to_direction(cx, ys + 0.5, w, h)
        nrm = np.cross(q[tri[:, 1]] - q[tri[:, 0]], q[tri[:, 2]] - q[tri[:, 0]])
        flip = (nrm * np.concatenate([out, out], 0)).sum(1) < 0
        tri[flip] = tri[flip][:, [0, 2, 1]]
        uv = np.stack([cx / w, (ys + 0.5) / h], 1)
        faces.append(tri + sum(len(v) for v in verts))
        verts.append(q)
        uvs.append(np.repeat(uv, 4, 0))
    if not verts:
        return None
    return (
        np.concatenate(verts).astype(np.float32),
        np.concatenate(faces).astype(np.int32),
        np.concatenate(uvs).astype(np.float32),
    )


def _row_runs(d: np.ndarray, edge_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last column of each pixel's row run (neighbours within ``edge_ratio``; longitude
    wraps; a run round the whole row ends at the seam). ([h, w] int, [h, w] int)"""
    h, w = d.shape
    nxt = np.roll(d, -1, 1)
    with np.errstate(invalid="ignore"):
        brk = ~((nxt <= edge_ratio * d) & (d <= edge_ratio * nxt))  # a break after column x
    brk[:, -1] |= ~brk.any(1)
    brk2 = np.concatenate([brk, brk], 1)
    idx2 = np.arange(2 * w)[None, :]
    start = np.maximum.accumulate(np.where(np.roll(brk2, 1, 1), idx2, -1), 1)[:, w:] % w
    stop = np.minimum.accumulate(np.where(brk2, idx2, 4 * w)[:, ::-1], 1)[:, ::-1][:, :w] % w
    return start, stop


def with_fins(world: Mesh, fins: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Mesh:
    """``world`` with the :func:`silhouette_fins` added, textured by the world's own texture."""
    v, f, uv = fins
    return Mesh(
        np.concatenate([world.vertices, v]),
        np.concatenate([world.faces, f + world.n_vertices]).astype(np.int32),
        np.concatenate([world.normals, vertex_normals(v, f)]) if world.normals is not None else None,
        np.concatenate([world.uvs, uv]).astype(np.float32),
        world.texture,
    )
