"""The ``prior`` depth backend: weight-free geometry read from the panorama itself.

Outdoors (ground, pop-up folds, sky):
- the ground is the plane at -eye height: a pixel at latitude lat < 0 lies at h / sin(-lat);
- a ground colour model is learnt from the bottom of the panorama (what lies under the camera is
  ground); going down each column from the horizon, the ground begins at its *contact line* with
  what stands on it - or, sooner, where the colours of what stands above the horizon end (a
  sidewalk or shaded sand at a wall's foot is ground the colour model may not know); above that
  line the column is a vertical fold at the contact's ground distance (r = d / cos lat), as in a
  pop-up book, until the sky, up to 50 m; a contact within 1° of the horizon is no measurement:
  the column floats and takes the nearest fold whose 3 m overhang reaches it (a crown over far
  ground stands at its trunk), else 30 m; a fold is no farther than most of its neighbours within
  10°;
- a flat band of another ground material between the road and a structure (a sidewalk, a path:
  a colour step below the structure, foreshortened texture, a run along the street) is ground: the
  structure stands on the band's far edge, not on the kerb (``_ground_band``);
- the ground colour model allows the ground's brightness a 20 % spread (shade changes brightness,
  not chromaticity);
- water (a smooth region below the horizon that mirrors the sky and is not underfoot) is a plane
  0.45 m below the ground under the camera: a constant, not a measurement (see ``water_drop``);
- the sky is at infinity (worldgen.depth.sky).
Indoors (a room box):
- floor and ceiling colour models from the bottom and the top; the floor-wall contact of each
  column gives the wall's horizontal distance there; the dominant wall direction (walls meet at
  right angles) and robust distances of the four walls give a box; the ceiling height comes from
  the ceiling-wall contacts; the depth is the ray's exit from the box (floor, ceiling or wall).
- never sky.
The scene is indoor when almost nothing above 30° latitude is sky and the zenith is closed
(``scene="auto"``), which the manifest records; ``--set depth.scene=indoor|outdoor`` overrides. Everything is vectorised over
pixels; the few loops run over rows or columns' summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..registry import Backend, StageContext, StageResult, register_backend
from ..stages.photo import photo_columns, seen_pixels
from ..types import DepthMap, Panorama
from .report import depth_report
from .sky import decide_scene, seen_sky, sky_gaps, sky_mask


@dataclass(frozen=True)
class PriorConfig:
    """Options of the prior.

    Args:
        scene: "auto", "indoor" or "outdoor".
        far: cap for room walls and distances indoors, metres (200).
        min_wall: nearest allowed fold or wall, metres (0.5).
        ground_lat_deg: rows this far below the horizon and lower teach the ground colour model (35).
        gap: a contact line needs this many non-ground pixels in a row (per 512 rows of panorama).
        ceiling_height: room height in metres when no ceiling-wall line is found (2.6).
        ground_tolerance: colour distance (in units of the ground samples' own spread) still counted as
            ground outdoors (4.0: sidewalks and dry patches are ground too).
        floor_tolerance: the same indoors (2.5: walls are often close to the floor's colour).
        fold_far: distance of what stands above the horizon in a column with no measurable ground
            contact (a floating column), and the cap of the ground plane outdoors, metres (30: beyond
            it a panorama's pixels carry little parallax, and a closer backdrop keeps meshes compact).
        spread_deg: width of the window, degrees of longitude, over which a fold may take the nearer
            distance of its neighbours (10; 0 = off).
        spread_pct: the percentile of the neighbours' distances taken (20: robust to one column's
            false contact on a shadow or a kerb).
        structure_eps: outdoors, the contact line is also where what stands above the horizon ends:
            the first run of pixels below the horizon whose colour (chromaticity and brightness, see
            ``_features``) is farther than this from every colour of the band above the horizon in its
            column and its neighbours (0.06; 0 = off). A sidewalk or shaded sand at a wall's foot is
            ground even where the ground colour model, learnt far below, does not know it.
        structure_band_deg: height of that band above the horizon, degrees (8).
        vertical_edge: brightness step across a column that makes a vertical edge (0.02 per pixel
            at 512 rows; see ``_vertical_edges``).
        vertical_share: below the horizon, a pixel within ``structure_eps`` of the colours above it is
            part of that structure, not ground, where more than this share of its neighbourhood
            (H/32 rows x 9 columns) lies on vertical edges (0.1; 0 = off): a grey facade down to a
            grey street.
        overhang_m: how far sideways an overhang reaches, metres (3; 0 = off): a floating column takes
            the distance of the nearest fold whose overhang reaches it (see ``_overhang``).
        contact_far: cap of a fold whose contact line was measured, metres (50: a canyon wall's foot a
            degree and a half below the horizon is that far, farther than the floating default).
        contact_min_deg: a contact line less than this far below the horizon, degrees, is no
            measurement: the column floats (1.0, i.e. beyond 92 m at 1.6 m eye height).
        room_height_min, room_height_max: indoors, the range of floor-to-ceiling heights the room box
            may take, metres (2.3 and 5.0: habitable rooms; a lower box is a rug or a table).
        room_floor_margin: indoors, how much more boundary evidence (the mean over columns along the
            ceiling-wall and the floor-wall line together, each 0..1) a box fitted to the floor-wall
            line first must gather than the box fitted to the ceiling-wall line first to be taken
            alone, and the other way round; within it either way, the room is both boxes'
            intersection (0.1; a negative value = the ceiling-first box only). See ``_room_box``.
        room_floor_peak: indoors, the least evidence along the floor-wall line, as a share of the
            strongest, of a room scale of usual height (0.7; 0 = off): the strongest such peak is taken
            over a stronger one that makes the room taller or lower than usual. Lines that run round the
            walls above the floor-wall line (a chair rail, a dado's top, wainscoting, desk partitions)
            read as the floor line of a taller room: Blender's corridor (2.5 m, a dado at 1.1 m) came
            out 3.3 m high with every wall twice as far (AbsRel 0.91), its floor-wall line 0.77 as
            strong as the dado's.
        room_typical_min, room_typical_max: the usual floor-to-ceiling heights, metres (2.3 and 3.2:
            homes, offices, classrooms; halls, lofts and warehouses are taller and are measured as
            before when no usual height has a peak).
        terrain_far: outdoors, distance of a terrain column's skyline, metres (110; 0 = off): terrain
            (a cliff, a canyon wall, a mountainside) recedes as it rises, unlike a wall or a trunk; a
            column is terrain where everything within ``terrain_win_deg`` of it rises above
            ``terrain_sky_deg`` and carries little foliage (green) and few vertical edges (see
            ``_terrain_columns``), and its foot is farther than ``terrain_foot`` or not measurable.
            Above its contact it is a planar slope from the contact to a skyline at this distance
            (``_slope``), and neither overhangs nor its neighbours pull it nearer.
        terrain_float: a terrain column's distance at the contact when the contact is not measurable
            (within ``contact_min_deg`` of the horizon) and the cap of a measured one, metres (50).
        terrain_sky_deg: the skyline elevation terrain reaches everywhere around a column, degrees (25).
        terrain_win_deg: width of that neighbourhood, degrees of longitude (10).
        terrain_green: the largest share of green (foliage) pixels above the horizon in that
            neighbourhood for terrain (0.3: crowns over trunks are folds at the trunks).
        terrain_vertical: the largest share of vertical-edge pixels (``_vertical_edges``) above the
            horizon in that neighbourhood for terrain (0.025: facades and trunks are vertical folds).
        segment_reach_m: outdoors, how far sideways, metres, a fold's distance spreads through one
            colour segment above the ground (5; 0 = off): a crown takes its trunk's distance where it
            hangs over farther ground (see ``_segment_reach``). What stands on its own foot (joined by
            like colours straight down to its contact) keeps its own distance, and terrain columns
            (see ``terrain_far``, whether or not that is on) take no part.
        segment_eps: largest colour difference (``_features``) between neighbours of one segment (0.05).
        segment_leaf: a fold's distance spreads sideways only through cells of the 128-row grid where at
            least this share of pixels is foliage (green over red and blue; 0.5; 0 = any colour): what
            hangs over farther ground is a crown. A rock face or a snowfield beside a boulder, a facade
            beside a kiosk has like colours too, but it stands on its own foot, farther away (spread
            through them, the distance of something nearer at their foot took the facades of
            procedural cities: AbsRel 0.097-0.160 with it, 0.086-0.134 without, seeds 0-4).
        segment_max_deg: the farthest a distance spreads, degrees of longitude (45).
        crown_top_deg: outdoors, a crown over the camera is a ceiling over its trunk: where a support
            (a trunk: like colours straight down to its contact) turns into other colours at an
            elevation e_top from this to ``crown_top_max_deg`` degrees (15-45), its crown's underside is
            a flat ceiling d tan(e_top) above the eye (d: the fold distance), spread through the
            crown's colour segment at that distance, and seen from the crown's bottom edge up to the
            first colour step in each column (a conifer's tier rim; brightness steps are relative:
            25 %). Where nearer than the fold, the ceiling's ray distance replaces it: under a broad
            crown 6 m away whose underside is 2.25 m above the eye, the fold said 7.8 m at 40° up and
            the underside is 3.5 m. A support top below 15° is mostly the short visible foot of something farther
            (a dark backlit conifer's trunk).
        crown_top_max_deg: the highest support top that holds a ceiling, degrees (45).
        crown_near: the farthest support that holds a ceiling, metres (15; 0 = off): a crown farther
            away is seen from the side, not from below.
        crown_sky_deg: a ceiling only in columns whose skyline stands at least this high, degrees
            (50): a crown over the camera fills the sky far up; a conifer 8 m away seen from the side
            ends lower, and the cones of its tiers face the camera. Only foliage (green over red and
            blue) is a crown: a facade's storeys are bands of colour over a support too.
        foot_deg: outdoors, what stands up to the horizon and keeps its own colours (``structure_eps``
            of the band above the horizon) for at least this far below it, degrees, before a step to
            other colours stands on that step, however ground-like its colour (3; 0 = off): a plain
            stone or brick facade over a paved street, whose colours the ground model learnt under
            the camera (asphalt, lane marks, kerbs) takes in. Not where that band is mostly green:
            green above the horizon that carries on below it is grass on rising ground.
        foot_green: the share of green in that band above which it is grass, not a facade (0.3).
        terrain_foot: a column is terrain only where its contact is at least this far, metres, or not
            measurable (25: what stands on the ground nearer is a wall, a facade, a rock, not a mountain).
        terrain_steep_deg: a column whose skyline stands above this elevation everywhere within
            ``terrain_win_deg`` is terrain whatever its vertical edges (50; 90 = off): a rock wall is
            streaked by gullies and ribs that read as vertical edges, and with its foot farther than
            ``terrain_foot`` (or not measurable) it is over 30 m high all around; a street's facades
            stand 30-50° up. Such a *steep* wall's foot is where the ground plane puts its contact, from
            ``terrain_float`` up to the distance of a contact ``contact_min_deg`` below the horizon
            (92 m at 1.6 m eye height), which is where a foot that cannot be told from the horizon
            lies at the least.
        occluded_share: a steep column with vertical edges whose foot is far is a facade whose foot
            something hides (a parked car, a van) where at least this share of the steep columns
            within ``occluded_win_deg`` have a near foot (0.5; 0 = off): its foot is put on the line
            through its neighbours' (see ``_occluded_feet``). A parked van on Blender's street took
            the facades behind it 50-90 m away (truth 7-14 m): the street's AbsRel 1.13 -> 0.31.
        occluded_win_deg: the window of longitude that majority is counted over, degrees (120).
        occluded_span_deg: the widest run of hidden feet whose neighbours on either side set its
            foot, degrees of longitude between those neighbours (60).
        terrain_closed_deg: no column is *steep* where the skyline's median over ``terrain_win_deg``
            stands at or above this elevation (87; 90 = off): nothing of the sky is seen overhead, so
            what closes it is a canopy, a roof or an arcade, not a wall of rock (one 92 m away that
            rises to 87° would be 1.8 km high). In viser's forest-slope HDRI, under a closed canopy,
            every trunk was a steep wall and stood 94 m away. The procedural walls of rock and city
            streets stand at most 84° up.
        terrain_slope_deg: the steepest a terrain face stands over its whole height, degrees (75; 0 =
            off): seen from the foot at horizontal distance d, a face that steep reaches the skyline
            elevation e_s only at d tan(a) / (tan(a) - tan(e_s)) away, so a skyline higher than a
            canyon's puts the crest farther than ``terrain_far`` (up to ``terrain_crest_far``, also the
            crest of a skyline at or above a).
        terrain_crest_far: the farthest a terrain crest is put, metres (300).
        terrain_mound: a steep column (see ``terrain_steep_deg``) whose contact is near, where at least
            this share of what lies between the contact and the rock above it is green, is a grassy
            mound (a moraine, a knoll, ground rising to the wall) before a wall: the mound stands at its
            contact, the rock above it at the wall's foot hidden behind the mound (the median of the
            wall's visible feet), as a slope to its crest (0.7; 0 = off). Only where at least a quarter
            of the columns within 120° are steep walls with a far foot (a hedge before a facade is not
            one); see ``_before_walls``.
        terrain_object_aspect: the other steep columns there whose foot is nearer than ``terrain_foot``
            hold a near object before the wall (a boulder, a hut, a parked car), as wide as their run of
            columns at its median distance and at most this share of its width tall (0.5: a resting
            boulder is wider than tall; 0 = off); above it the wall rises as above a mound. Not where
            the object has as many vertical edges as ``terrain_vertical`` allows terrain: trunks, posts
            and facades stand up to their own top.
        ground_shade: outdoors, the smallest spread (standard deviation) of brightness the ground
            colour model allows, relative to its samples' mean brightness (0.2): the ground learnt
            under the camera is often evenly lit, while farther on the same grass or sand lies in a
            shadow or turns from the sun, darker by a factor but of the same chromaticity; a
            tighter model ends the ground at the first shade and puts a fold (a canyon wall, a
            hillside) far too near. 0 = off.
        water_drop: outdoors, how far below the ground under the camera a water surface lies, metres
            (0.45; 0 = off). A shore or a bank stands above its water, and where the camera stands
            by a lake, most of what lies below the horizon may be water: put at the camera's ground
            height, all of it is 20-30 % too near. Nothing in one panorama measures the drop (the
            shoreline and the reflections give the water's height only in units of a distance that
            is itself unknown), so it is a constant, and 0.45 m was chosen from this project's own
            procedural generator, whose lakes lie exactly 0.45 m below the shore: real banks vary.
            The procedural lakes pass with any drop from 0.3 to 0.6 m (seeds 1 and 3: the same δ1,
            AbsRel 0.10-0.18). Water is found by ``_water``.
        band_step: outdoors, a ground band (a sidewalk, a path, a verge of another material) between
            the ground and what stands above the horizon ends, at the top, at a colour step at least
            this large (chromaticity and brightness as in ``_features`` but unsmoothed, means of H/128
            rows either side; 0.03; 0 = off): the structure stands on that step, not on the band's
            far edge (a kerb). See ``_ground_band``.
        band_texture: the least mean vertical luminance gradient (per pixel at 512 rows) of a ground
            band's texture (0.003): its pavers or grain must be seen to be foreshortened.
        band_ratio: the widest ground band, as the ratio of the ground distances of its top and its
            bottom edge (2.0: a sidewalk no wider than the camera's distance to its kerb; a step that
            far above the contact is more likely a storey line or a window row on the facade).
        band_run_deg: the narrowest run of columns with a ground band, degrees of longitude (3): a
            sidewalk runs along the street; one column's band is a shadow or a doorstep.
        water_eps: largest chromaticity difference between a pixel below the horizon and the sky
            pixel mirrored about the horizon for it to reflect the sky (0.03).
        water_step: the largest colour step (``_features``, per pixel at 512 rows) inside one smooth
            region of water (0.01: a sand or grass shore, a foam line, a reflected tree is an edge).
        water_seed_share: a smooth region below the horizon is water when at least this share of its
            pixels reflect the sky (0.02) and it does not reach the ground under the camera.
        water_texture: the largest median pixel-scale contrast of a water region (the standard
            deviation of brightness in 3x3 pixels over their mean; 0.06; 0 = off). ``water_step``
            reads colours smoothed over 5x5 pixels, so shaded gravel (0.11 on Blender's garden
            HDRI), lit by the sky and of its colour, passed for calm water; a lake or a lagoon
            is smooth at the pixel scale (procedural lakes 0.006-0.011, the Venice lagoon 0.026).
    """

    scene: str = "auto"
    far: float = 200.0
    min_wall: float = 0.5
    ground_lat_deg: float = 35.0
    gap: int = 16
    ceiling_height: float = 2.6
    ground_tolerance: float = 4.0
    floor_tolerance: float = 2.5
    fold_far: float = 30.0
    spread_deg: float = 10.0
    spread_pct: float = 20.0
    structure_eps: float = 0.06
    structure_band_deg: float = 8.0
    vertical_edge: float = 0.02
    vertical_share: float = 0.1
    overhang_m: float = 3.0
    contact_far: float = 50.0
    contact_min_deg: float = 1.0
    room_height_min: float = 2.3
    room_height_max: float = 5.0
    room_floor_margin: float = 0.1
    room_floor_peak: float = 0.7
    room_typical_min: float = 2.3
    room_typical_max: float = 3.2
    terrain_far: float = 110.0
    terrain_float: float = 50.0
    terrain_sky_deg: float = 25.0
    terrain_win_deg: float = 10.0
    terrain_green: float = 0.3
    terrain_vertical: float = 0.025
    terrain_foot: float = 25.0
    terrain_steep_deg: float = 50.0
    occluded_share: float = 0.5
    occluded_win_deg: float = 120.0
    occluded_span_deg: float = 60.0
    terrain_closed_deg: float = 87.0
    terrain_slope_deg: float = 75.0
    terrain_crest_far: float = 300.0
    terrain_mound: float = 0.7
    terrain_object_aspect: float = 0.5
    foot_deg: float = 3.0
    foot_green: float = 0.3
    segment_reach_m: float = 5.0
    segment_eps: float = 0.05
    segment_leaf: float = 0.5
    segment_max_deg: float = 45.0
    crown_top_deg: float = 15.0
    crown_top_max_deg: float = 45.0
    crown_near: float = 15.0
    crown_sky_deg: float = 50.0
    water_drop: float = 0.45
    water_eps: float = 0.03
    water_step: float = 0.01
    water_seed_share: float = 0.02
    water_texture: float = 0.06
    ground_shade: float = 0.2
    band_step: float = 0.03
    band_texture: float = 0.003
    band_ratio: float = 2.0
    band_run_deg: float = 3.0


def _latitudes(h: int) -> np.ndarray:
    return np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h


def _colour_model(
    img: np.ndarray, sample: np.ndarray, feats: np.ndarray | None = None, shade: float = 0.0
) -> np.ndarray:
    """Mahalanobis distance of every pixel to the colours under ``sample``, in units of the samples'
    95th percentile (1.0 = as unusual as the 5% least typical sample). ``feats``: ``_features(img)``
    when already computed; ``shade``: the smallest standard deviation of brightness the model allows,
    relative to the samples' mean brightness. [H, W] float32"""
    feats = _features(img) if feats is None else feats
    x = feats[sample].astype(np.float64)
    if len(x) < 16:
        return np.full(img.shape[:2], np.inf, np.float32)
    mu = x.mean(0)
    cov = np.cov((x - mu).T) + np.eye(x.shape[1]) * 1e-4
    # shade and shadow change a surface's brightness by a factor, not its chromaticity
    cov[2, 2] = max(cov[2, 2], (shade * mu[2]) ** 2)
    inv = np.linalg.inv(cov)
    d = feats.reshape(-1, feats.shape[-1]) - mu
    m = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv, d), 0)).reshape(img.shape[:2])
    ref = float(np.percentile(m[sample], 95)) or 1.0
    return (m / ref).astype(np.float32)


def _features(img: np.ndarray) -> np.ndarray:
    """Colour (chromaticity and brightness) smoothed a little, so texture does not break regions."""
    sm = ndimage.uniform_filter(img.astype(np.float32), size=(5, 5, 1))
    lum = sm.mean(-1, keepdims=True)
    chrom = sm / np.maximum(lum * 3, 1e-3)
    return np.concatenate([chrom[..., :2], lum], axis=-1)


def _first_run(blocked: np.ndarray, gap: int) -> np.ndarray:
    """Per column, the first row (scanning ``blocked`` from row 0 down) where ``gap`` blocked pixels
    in a row begin; H where there is none. [W] int"""
    h, w = blocked.shape
    acc = np.zeros(w, np.int32)
    first = np.full(w, h, np.int64)
    for y in range(h):  # one vectorised step per row
        acc = np.where(blocked[y], acc + 1, 0)
        hit = (acc >= gap) & (first == h)
        first[hit] = y - gap + 1
    return first


def _smooth_line(rows: np.ndarray, size: int) -> np.ndarray:
    """A robust smoothing of a per-column line across the seam (median filter, wrapped)."""
    return ndimage.median_filter(rows.astype(np.float64), size=size, mode="wrap")


def _structure_distance(feats: np.ndarray, band_deg: float) -> np.ndarray:
    """Squared colour distance of each pixel of the 30° below the horizon to the nearest colour of what
    stands above the horizon in its column (and its two neighbours on either side), in the band
    ``band_deg`` above the horizon. ``feats``: ``_features`` of the panorama. [H/6, W] float32

    (A contact lower than 30° below the horizon is nearer than 2.8 m; the ground model finds it.)"""
    h = feats.shape[0]
    b = max(2, round(band_deg / 180 * h))
    step = max(1, b // 12)
    band = feats[h // 2 - b : h // 2 : step]  # [B, W, 3]
    samples = np.concatenate([np.roll(band, s, axis=1) for s in (-2, -1, 0, 1, 2)], axis=0)  # [S, W, 3]
    below = feats[h // 2 : h // 2 + h // 6]  # [R, W, 3]
    d2 = np.full(below.shape[:2], np.inf, np.float32)
    for smp in samples:  # one vectorised step per band sample (a few dozen)
        np.minimum(d2, ((below - smp[None]) ** 2).sum(-1), out=d2)
    return d2


def _vertical_edges(lum: np.ndarray, strength: float) -> np.ndarray:
    """Pixels on a vertical edge (the horizontal brightness gradient above ``strength`` and twice the
    vertical one): in an equirect, vertical lines of the world are image columns; window sides,
    corners, posts and trunks make them, a flat ground seen near the horizon does not. [H, W] bool"""
    gy, gx = np.gradient(lum)
    # per-pixel gradients grow as the panorama gets smaller; scale as the sky's edge test does
    thr = strength * math.sqrt(min(max(512.0 / lum.shape[0], 1.0), 4.0))
    return (np.abs(gx) > thr) & (np.abs(gx) > 2 * np.abs(gy))


def _overhang(d: np.ndarray, reach: float, w: int) -> np.ndarray:
    """Per column, the nearest fold whose overhang reaches it: a fold at distance d covers the columns
    within atan(reach / d) of it (a crown, an awning or an eave reaches ``reach`` metres sideways
    from the trunk or wall that touches the ground). [W]"""
    half = np.arctan(reach / np.maximum(d, 1e-6)) / (2 * np.pi) * w  # columns
    out = d.copy()
    for k in np.unique(np.clip(np.round(np.geomspace(1, max(2.0, half.max()), 12)), 1, w // 4)).astype(int):
        # one vectorised dilation per reach level (a dozen): folds that reach k columns spread over k columns
        src = np.where(half >= k, d, np.inf)
        out = np.minimum(out, ndimage.minimum_filter1d(src, 2 * k + 1, mode="wrap"))
    return out


def _vertical_share(feats: np.ndarray, sky: np.ndarray, config: PriorConfig) -> np.ndarray:
    """Per column, the share of what stands above the horizon (not sky) that is a vertical edge
    (``_vertical_edges``: facades, trunks, posts, a rock wall's gullies), averaged over
    ``terrain_win_deg`` of longitude. feats: ``_features``; sky: [H, W]. [W]"""
    h, w = sky.shape
    k = max(3, round(config.terrain_win_deg / 360 * w)) | 1
    above = (np.arange(h) < h // 2)[:, None] & ~sky
    vert = _vertical_edges(feats[..., 2], config.vertical_edge)
    return ndimage.uniform_filter1d((vert & above).sum(0) / np.maximum(above.sum(0), 1), k, mode="wrap")


def _terrain_columns(
    img: np.ndarray,
    sky: np.ndarray,
    config: PriorConfig,
    feats: np.ndarray | None = None,
    vshare: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns whose structure above the horizon is terrain (rock rising to a high skyline all
    around), not vertical structures: everything within ``terrain_win_deg`` rises above
    ``terrain_sky_deg`` (no sky gaps between crowns or buildings), and in that window the part above
    the horizon is mostly not green (foliage: crowns over trunks) and has few vertical edges (facades,
    trunks, posts). A column whose skyline stands above ``terrain_steep_deg`` everywhere in the window
    is terrain whatever its vertical edges (a rock wall's gullies and ribs). Returns the mask, the
    skyline elevation per column (radians) and the mask of those *steep* columns (``vshare``:
    ``_vertical_share``, when the caller has it). [W] bool, [W], [W] bool"""
    h, w = sky.shape
    top = np.argmax(~sky, axis=0)  # the first non-sky row per column (0 where there is no sky)
    e_s = math.pi / 2 - math.pi * (top + 0.5) / h
    k = max(3, round(config.terrain_win_deg / 360 * w)) | 1
    low = ndimage.minimum_filter1d(e_s, k, mode="wrap")
    terrain = low >= math.radians(config.terrain_sky_deg)
    steep = low >= math.radians(config.terrain_steep_deg)
    if config.terrain_closed_deg < 90:
        # closed overhead (a canopy, a roof): no wall of rock (see ``terrain_closed_deg``)
        steep &= ndimage.median_filter(e_s, k, mode="wrap") < math.radians(config.terrain_closed_deg)
    above = (np.arange(h) < h // 2)[:, None] & ~sky
    n = np.maximum(above.sum(0), 1)
    green = (img[..., 1] > img[..., 0]) & (img[..., 1] > img[..., 2])
    share = ndimage.uniform_filter1d((green & above).sum(0) / n, k, mode="wrap")
    terrain &= share < config.terrain_green
    steep &= terrain
    if vshare is None:
        vshare = _vertical_share(_features(img) if feats is None else feats, sky, config)
    terrain &= (vshare < config.terrain_vertical) | steep
    return terrain, e_s, steep


def _either_side(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the nearest column of ``mask`` ([W] bool) on its left and on its right (itself
    included), as indices into three copies of the columns laid end to end (the panorama wraps;
    column c is w + c): -1 where there is none on the left, 3W where there is none on the right.
    ([W] int, [W] int)"""
    w = len(mask)
    idx = np.arange(3 * w)
    tiled = np.tile(mask, 3)
    left = np.maximum.accumulate(np.where(tiled, idx, -1))[w : 2 * w]
    right = np.minimum.accumulate(np.where(tiled, idx, 3 * w)[::-1])[::-1][w : 2 * w]
    return left, right


def _occluded_feet(
    d: np.ndarray,
    steep: np.ndarray,
    far_foot: np.ndarray,
    vshare: np.ndarray,
    config: PriorConfig,
    seen: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden feet of built walls: the columns of a *steep* structure (``terrain_steep_deg``) with
    vertical edges (``terrain_vertical``: windows, doors, pilasters) whose foot is far
    (``far_foot``) where most steep columns within ``occluded_win_deg`` have a near foot. In a street
    canyon that is a facade whose foot a parked car or a van hides: the car's roof, just below the
    horizon, was read as the foot and the facade put 50-90 m away. A wall of rock is mostly far
    feet, or has no vertical edges, and is left alone. Such a column's foot lies on the line, in
    plan view, through the feet of the nearest near-foot steep columns on either side (within
    ``occluded_span_deg`` of each other): a facade is flat between them; the distance is kept
    between the nearer flank's and twice the farther one's (an inner corner in between).

    Where only some columns were seen (``seen``: a photo world, a partial panorama), a flank that
    lies beyond the made-up backdrop is unknown: a column whose other flank is seen, within half of
    ``occluded_span_deg``, takes that flank's distance (a facade at the photo's side edge whose foot
    a parked car hides; it was left at the far foot and read as a rock face 75-117 m away, truth
    7-9 m).

    d: horizontal fold distance per column, metres; steep, far_foot, seen: per column; vshare:
    ``_vertical_share``. Returns the mask and the distance per column. [W] bool, [W]"""
    w = len(d)
    near = steep & ~far_foot
    k = max(3, round(config.occluded_win_deg / 360 * w)) | 1
    steep_n = ndimage.uniform_filter1d(steep.astype(float), k, mode="wrap")
    near_n = ndimage.uniform_filter1d(near.astype(float), k, mode="wrap")
    majority = near_n >= config.occluded_share * np.maximum(steep_n, 1e-9)
    cand = steep & far_foot & majority & (vshare >= config.terrain_vertical)
    if not cand.any() or not near.any():
        return np.zeros(w, bool), d
    # the nearest near-foot steep column on either side, so a run across the seam finds its flanks too
    left, right = _either_side(near)
    span = (right - left) * 2 * np.pi / w
    ok = cand & (left >= 0) & (right < 3 * w) & (span <= math.radians(config.occluded_span_deg))
    li, ri = np.clip(left, 0, 3 * w - 1) % w, np.clip(right, 0, 3 * w - 1) % w
    phi = 2 * np.pi * (np.arange(w) + 0.5) / w  # longitude up to a constant: only angles between matter
    pl = d[li] * np.stack([np.cos(phi[li]), np.sin(phi[li])])  # the flanks' feet in plan view, [2, W]
    pr = d[ri] * np.stack([np.cos(phi[ri]), np.sin(phi[ri])])
    e = pr - pl
    u = np.stack([np.cos(phi), np.sin(phi)])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (pl[0] * e[1] - pl[1] * e[0]) / (u[0] * e[1] - u[1] * e[0])  # where the ray meets the line
    lo, hi = np.minimum(d[li], d[ri]), np.maximum(d[li], d[ri])
    t = np.clip(np.where(np.isfinite(t) & (t > 0), t, hi), lo, 2 * hi)
    if seen is not None and not seen.all():
        # the nearest unseen column on either side: a flank beyond it is in or past the backdrop
        lu, ru = _either_side(~seen)
        left_ok, right_ok = (left >= 0) & (left > lu), (right < 3 * w) & (right < ru)
        ok &= left_ok & right_ok
        near_enough = math.radians(config.occluded_span_deg) / 2
        me = np.arange(w, 2 * w)
        one_l = cand & seen & left_ok & ~right_ok & ((me - left) * 2 * np.pi / w <= near_enough)
        one_r = cand & seen & right_ok & ~left_ok & ((right - me) * 2 * np.pi / w <= near_enough)
        t = np.where(one_l, d[li], np.where(one_r, d[ri], t))
        ok |= one_l | one_r
    return ok, np.where(ok, t, d)


def _slope(d: np.ndarray, lat_c: np.ndarray, e_s: np.ndarray, far: float | np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Ray distance of a planar slope that rises from a contact at horizontal distance ``d`` (seen at
    latitude ``lat_c``) to a skyline at horizontal distance ``far`` (seen at ``e_s``): on a plane
    through a horizontal line, 1 / horizontal distance is linear in tan(elevation), so the slope is
    that line between the two ends (constant beyond them). d, lat_c, e_s: [W]; far: scalar or [W];
    lat: [H]. [H, W]"""
    e_s = np.maximum(e_s, math.radians(2.0))
    e_c = np.minimum(lat_c, 0.0)
    ds = np.maximum(far, d)
    t = (np.tan(np.clip(lat, -1.5, 1.5))[:, None] - np.tan(e_c)[None]) / (np.tan(e_s) - np.tan(e_c))[None]
    inv = 1 / d[None] + np.clip(t, 0, 1) * (1 / ds - 1 / d)[None]
    return 1 / inv / np.cos(lat)[:, None]


def _rock_bottom(img: np.ndarray, sky: np.ndarray, contact: np.ndarray, run: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column, where the rock above a green mound begins: going up from the contact line, the
    first run of ``run`` pixels that are not green (G above R and B) nor sky starts; returns the row
    just below that run (the mound's top row; 0 where there is no such run) and the share of green
    pixels between it and the contact (the mound's rows). [W] int, [W] float"""
    h, w = sky.shape
    green = (img[..., 1] > img[..., 0]) & (img[..., 1] > img[..., 2])
    rows = np.arange(h)[:, None]
    c = np.floor(contact).astype(int)
    rock = ~green & ~sky & (rows < c[None])
    first = _first_run(rock[::-1], run)  # rows flipped: the first run going up from the contact
    top = np.where(first >= h, 0, h - first)  # the run's lowest row is h - 1 - first
    mound = (rows >= top[None]) & (rows < c[None])
    share = (green & mound).sum(0) / np.maximum(mound.sum(0), 1)
    return top, share


def _crest(d: np.ndarray, e_s: np.ndarray, config: PriorConfig) -> np.ndarray:
    """Horizontal distance of a terrain column's crest (its skyline at ``e_s``) seen from a foot at
    ``d``: ``terrain_far``, or where a face no steeper than ``terrain_slope_deg`` reaches the skyline
    (see ``terrain_slope_deg``). [W]"""
    crest = np.full(d.shape, float(config.terrain_far))
    if config.terrain_slope_deg > 0:
        # the crest of a face no steeper than terrain_slope_deg that reaches the skyline e_s
        ta = math.tan(math.radians(config.terrain_slope_deg))
        te = np.tan(np.minimum(e_s, 1.5))
        with np.errstate(divide="ignore"):
            reach = np.where(te < ta, d * ta / np.maximum(ta - te, 1e-9), np.inf)
        crest = np.clip(reach, config.terrain_far, max(config.terrain_crest_far, config.terrain_far))
    return crest


def _before_walls(
    fold: np.ndarray,
    img: np.ndarray,
    feats: np.ndarray,
    sky: np.ndarray,
    contact: np.ndarray,
    d: np.ndarray,
    terrain: np.ndarray,
    steep: np.ndarray,
    e_s: np.ndarray,
    eye_height: float,
    config: PriorConfig,
) -> np.ndarray:
    """What stands near before a steep wall of rock (``terrain_steep_deg``) whose foot is far around it
    does not reach the wall's skyline: above it the wall rises from its own foot, hidden behind it. Two
    kinds (see ``terrain_mound`` and ``terrain_object_aspect``): a grassy mound, which ends where the
    rock begins, and a near object of other colours (a boulder, a hut), which ends at a height set by
    its width. Above them, the wall is a planar slope (``_slope``) from the median of the wall's
    visible feet to its crest (``_crest``). Only where at least a quarter of the columns within 120°
    are steep walls with a far foot (a hedge or a kiosk before a street's facades is not one).
    fold: [H, W] the folds so far; feats: ``_features(img)``; d, terrain, steep, e_s: per column, as in
    ``outdoor_prior``. [H, W]"""
    h, w = sky.shape
    lat = _latitudes(h)
    rows = np.arange(h)[:, None]
    walls = terrain & steep
    k = max(3, round(w / 3)) | 1
    near = steep & ~terrain & (ndimage.uniform_filter1d(walls.astype(float), k, mode="wrap") >= 0.25)
    foot = np.full(w, float(np.median(d[walls])))
    crest = _crest(foot, e_s, config)
    gap = max(2, round(config.gap * h / 512))
    if config.terrain_mound > 0:
        top, share = _rock_bottom(img, sky, contact, max(2, gap // 2))
        mound = near & (share >= config.terrain_mound) & (top <= np.floor(contact) - gap)
        wall = _slope(foot, math.pi / 2 - math.pi * (top + 0.5) / h, e_s, crest, lat)
        fold = np.where(mound[None] & (rows < top[None]), wall, fold)
        near &= ~mound
    if config.terrain_object_aspect > 0:
        # a run of columns with a near foot is one object, as wide as the run at its median distance
        near &= d < config.terrain_foot
        lab, n = ndimage.label(near)
        if n > 1 and near[0] and near[-1]:  # one object across the seam
            lab[lab == lab[-1]] = lab[0]
        if n:
            width = np.bincount(lab, minlength=n + 1) * 2 * np.pi / w  # radians of longitude
            dist = np.asarray(ndimage.median(d, lab, np.arange(n + 1)), float)
            height = config.terrain_object_aspect * width * dist
            e_top = np.arctan(np.maximum(height - eye_height, 0.0) / np.maximum(dist, 1e-3))[lab]
            # a boulder or a hut is plain; trunks and posts make vertical edges (see ``terrain_vertical``)
            vert = _vertical_edges(feats[..., 2], config.vertical_edge)
            own = (rows < np.floor(contact)[None]) & (lat[:, None] < np.maximum(e_top, math.radians(3.0))[None])
            labels = np.arange(n + 1)
            share = ndimage.sum((vert & own).sum(0), lab, labels) / np.maximum(ndimage.sum(own.sum(0), lab, labels), 1)
            lab = np.where(share[lab] < config.terrain_vertical, lab, 0)
            wall = _slope(foot, e_top, e_s, crest, lat)
            fold = np.where((lab > 0)[None] & (lat[:, None] > e_top[None]), wall, fold)
    return fold


def _segment_reach(
    feats: np.ndarray,
    region: np.ndarray,
    d: np.ndarray,
    contact: np.ndarray,
    reach: float,
    eps: float,
    max_deg: float,
    rows: int = 128,
    ceiling: tuple[float, float, float] | None = None,
    ceiling_step: float = 0.25,
    ceiling_cells: int = 32,
    leaf: np.ndarray | None = None,
    leaf_share: float = 0.5,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Per pixel of ``region`` (what stands above the ground), the nearest fold distance that reaches it
    through pixels of one colour segment: a crown stands at its trunk's distance, not at the far ground
    seen beside the trunk. Distances flow between neighbouring pixels of a downsampled panorama whose
    colours (``feats``) differ by less than ``eps``; a distance d travels at most ``reach`` metres
    sideways (k steps of the grid's longitude step only if d * k * step <= reach) and ``max_deg``.
    d: fold distance per column, metres. Returns [H, W] (inf outside ``region``).

    With ``ceiling`` = (lowest, highest support top, degrees; nearest support, metres), also the
    height above the eye of a crown's underside per pixel, metres ([H, W], inf where none): a
    crown over the camera is a ceiling over its trunk, not a fold at the trunk's distance (see
    ``PriorConfig.crown_top_deg``).

    With ``leaf`` ([H, W] bool, foliage), distances travel sideways only between cells of which at
    least ``leaf_share`` is foliage (see ``PriorConfig.segment_leaf``); the support below a crown (a
    trunk) and the crown's ceiling height are found as without it."""
    h, w = region.shape
    f = max(1, h // rows)
    hs, ws = h // f, w // f
    fs = feats[: hs * f, : ws * f].reshape(hs, f, ws, f, 3).mean((1, 3))
    reg = region[: hs * f, : ws * f].reshape(hs, f, ws, f).mean((1, 3)) > 0.5
    ds = d[: ws * f].reshape(ws, f).min(1)
    cur = np.where(reg, ds[None], np.inf)
    right = (np.abs(fs - np.roll(fs, -1, 1)).max(-1) < eps) & reg & np.roll(reg, -1, 1)  # x <-> x + 1
    down = (np.abs(fs[1:] - fs[:-1]).max(-1) < eps) & reg[1:] & reg[:-1]  # y <-> y + 1
    links = (right, down)
    if leaf is not None:
        # what hangs over farther ground is foliage (see PriorConfig.segment_leaf)
        lf = leaf[: hs * f, : ws * f].reshape(hs, f, ws, f).mean((1, 3)) >= leaf_share
        links = (right & lf & np.roll(lf, -1, 1), down & lf[1:] & lf[:-1])
    # what stands on its own foot keeps its own distance: the pixels joined by like colours, straight
    # down their column, to the fold's bottom row
    cs = np.clip(np.floor(contact[: ws * f].reshape(ws, f).min(1) / f).astype(int) - 1, -1, hs - 1)
    base = np.zeros((hs, ws), bool)
    for y in range(hs - 1, -1, -1):  # one vectorised step per grid row
        base[y] = reg[y] & ((cs == y) | ((base[y + 1] & down[y]) if y + 1 < hs else False))
    lift = np.full(ws, np.inf)
    if ceiling is not None:
        # a support (a trunk) ends where its crown begins: the first grid row above its base, seen at
        # e_top, lies d tan(e_top) above the eye. A base whose like colours reach its column's top
        # stands on its own foot (a wall, a conifer joined down to its contact) and holds no ceiling;
        # a top near the horizon is no trunk's (the far ground behind a spread distance)
        has = base.any(0)
        top = np.where(has, np.argmax(base, axis=0), hs)
        has &= top > np.argmax(reg, axis=0) + 2
        e_top = np.pi / 2 - np.pi * (top * f) / h
        lo, hi, near = math.radians(ceiling[0]), math.radians(ceiling[1]), ceiling[2]
        ok = has & (e_top >= lo) & (e_top <= hi) & (ds <= near)
        lift = np.where(ok, ds * np.tan(np.clip(e_top, 0, 1.5)), np.inf)
    hgt = np.where(reg, lift[None], np.inf)  # each pixel's source's support height, metres
    step = 2 * np.pi / ws
    nsteps = int(math.ceil(math.radians(max_deg) / step))

    def _near(a: np.ndarray, b: np.ndarray, links: tuple) -> tuple[np.ndarray, np.ndarray]:
        """The smallest ``a`` over the linked neighbours, and the smallest ``b`` among those
        neighbours that tie on it. links: (right, down) masks [hs, ws], [hs - 1, ws]."""
        lr, ld = links
        cands = [
            (np.where(lr, np.roll(a, -1, 1), np.inf), np.roll(b, -1, 1)),
            (np.where(np.roll(lr, 1, 1), np.roll(a, 1, 1), np.inf), np.roll(b, 1, 1)),
        ]
        for sl_to, sl_from in ((np.s_[:-1], np.s_[1:]), (np.s_[1:], np.s_[:-1])):
            ca, cb = np.full_like(a, np.inf), np.full_like(b, np.inf)
            ca[sl_to], cb[sl_to] = np.where(ld, a[sl_from], np.inf), b[sl_from]
            cands.append((ca, cb))
        best, bh = cands[0]
        for ca, cb in cands[1:]:
            bh = np.where(ca < best, cb, np.where(ca == best, np.minimum(bh, cb), bh))
            best = np.minimum(best, ca)
        return best, bh

    for k in range(1, nsteps + 1):
        # one vectorised relaxation per step of reach (a few dozen); a pixel keeps its source's
        # support height beside its distance (the lowest, where sources tie on the distance)
        cand, ch = _near(cur, hgt, links)
        ok = ~base & (cand * k * step <= reach)
        take = ok & (cand < cur)
        new = np.where(take, cand, cur)
        hnew = np.where(take, ch, np.where(ok & (cand == cur), np.minimum(hgt, ch), hgt))
        if np.array_equal(new, cur) and np.array_equal(hnew, hgt):
            break
        cur, hgt = new, hnew
    out = np.full((h, w), np.inf)
    out[: hs * f, : ws * f] = np.repeat(np.repeat(cur, f, 0), f, 1)
    if ceiling is None:
        return np.where(region, out, np.inf)
    # the support height spreads on through one crown (like colours at one distance), however far:
    # a crown's underside is one ceiling, wider than its trunk's distance reaches
    same = (right & (cur == np.roll(cur, -1, 1)), down & (cur[1:] == cur[:-1]))
    for _ in range(nsteps):
        hn = np.where(base, hgt, np.minimum(hgt, _near(hgt, hgt, same)[0]))
        if np.array_equal(hn, hgt):
            break
        hgt = hn
    # the underside is seen from the crown's bottom edge (below it: the trunk, or what lies beyond)
    # up to the first colour step in its column: above a conifer's lowest tier rim the next tier
    # faces the camera. Only where the ceiling is nearer than the fold (above the support's top)
    e_row = (np.pi / 2 - np.pi * (np.arange(hs) + 0.5) * f / h)[:, None]
    with np.errstate(invalid="ignore"):
        under = reg & np.isfinite(hgt) & (hgt * np.cos(e_row) < cur * np.sin(np.maximum(e_row, 0)))
    # a step is relative in brightness here: a dark underside under a lit tier differs by a factor,
    # not by much in absolute terms
    lum = np.log(np.maximum(fs[..., 2], 0.02))
    smooth = down & (np.abs(lum[1:] - lum[:-1]) < math.log(1.0 + ceiling_step))
    run = np.zeros((hs, ws), bool)
    for y in range(hs - 2, -1, -1):  # one vectorised step per grid row, upwards
        start = ~under[y + 1] | (~under[y + 2] if y + 2 < hs else True)  # one blended edge row allowed
        run[y] = under[y] & (start | (run[y + 1] & smooth[y]))
    # an underside over the camera is a broad patch: specks among a canopy's leaves are not
    lab, n = ndimage.label(run)
    if n:
        size = np.bincount(lab.ravel(), minlength=n + 1)
        run &= size[lab] >= ceiling_cells
    lifted = np.full((h, w), np.inf)
    lifted[: hs * f, : ws * f] = np.repeat(np.repeat(np.where(run, hgt, np.inf), f, 0), f, 1)
    return np.where(region, out, np.inf), np.where(region, lifted, np.inf)


def _water(img: np.ndarray, sky: np.ndarray, config: PriorConfig, feats: np.ndarray | None = None) -> np.ndarray:
    """Water below the horizon: smooth regions that reflect the sky and are not what the camera
    stands on. [H, W] bool

    A calm water surface is a mirror: below the horizon, at the latitude -e, it shows the sky seen at
    +e, with the same chromaticity (Fresnel reflection dims it, never brightens it), and it is smooth:
    its colour fades from the reflected sky to the water's own colour without edges. So: (1) pixels
    whose chromaticity is within ``water_eps`` of the sky pixel mirrored about the horizon, no
    brighter, and bluish (a sunlit sand or a dry field is warm); (2) regions of the lower half where
    no colour step between neighbours exceeds ``water_step`` (8-connected); (3) a region is water
    where at least ``water_seed_share`` of it reflects the sky and it does not reach 75° below the
    horizon: the ground under the camera's feet is ground (a grey street under a pale sky has the
    sky's chromaticity and is smooth, but the camera stands on it); (4) in each column, what lies
    between the first and the last water pixel (and the 2 pixels of the region's edge below it) is
    water too: a sun glint, a reflected cloud."""
    h, w = sky.shape
    feats = _features(img) if feats is None else feats
    below = feats[h // 2 :]
    mirror = feats[h // 2 - 1 :: -1][: below.shape[0]]  # row h/2 + k mirrors row h/2 - 1 - k
    sky_up = sky[h // 2 - 1 :: -1][: below.shape[0]]
    seed = (
        sky_up
        & (
            np.maximum(np.abs(below[..., 0] - mirror[..., 0]), np.abs(below[..., 1] - mirror[..., 1]))
            < config.water_eps
        )
        & (below[..., 2] <= mirror[..., 2] * 1.05)
        & (img[h // 2 :, :, 2] >= img[h // 2 :, :, 0])
    )
    # one colour step to the next row and to the next column (wrapped), the largest over the features
    thr = config.water_step * 512 / h
    smooth = np.ones(below.shape[:2], bool)
    for c in range(below.shape[-1]):
        f = below[..., c]
        smooth[:-1] &= np.abs(f[1:] - f[:-1]) < thr
        smooth &= np.abs(np.roll(f, -1, 1) - f) < thr
    lab, n = ndimage.label(smooth, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros((h, w), bool)
    cnt = np.bincount(lab.ravel(), minlength=n + 1)
    seeds = np.bincount(lab.ravel(), weights=seed.ravel(), minlength=n + 1)
    feet = np.zeros(n + 1, bool)
    feet[np.unique(lab[_latitudes(h)[h // 2 :] < -math.radians(75.0)])] = True
    # regions smaller than 0.2 % of the panorama are reflections of single trees or glints, not a lake
    water = (seeds >= config.water_seed_share * cnt) & ~feet & (cnt >= 0.002 * h * w)
    water[0] = False
    if config.water_texture > 0 and water.any():
        # calm water is smooth at the pixel scale; gravel or grass in the shade is not (see
        # ``water_texture``): the median 3x3 brightness contrast of each candidate region
        lum = img[h // 2 :].mean(-1)
        m = ndimage.uniform_filter(lum, 3, mode=("nearest", "wrap"))
        m2 = ndimage.uniform_filter(lum * lum, 3, mode=("nearest", "wrap"))
        contrast = np.sqrt(np.maximum(m2 - m * m, 0.0)) / np.maximum(m, 1e-3)
        ids = np.flatnonzero(water)
        med = np.asarray(ndimage.median(contrast, lab, ids), np.float64)
        water[ids[med > config.water_texture]] = False
    lake = water[lab]
    # what the water surrounds in its column is on the water too: a sun glint, a reflected cloud, the
    # edge pixels of a region (rows between a column's first and last water pixel)
    r = np.arange(lake.shape[0])[:, None]
    top = np.where(lake.any(0), np.argmax(lake, 0), lake.shape[0])
    bottom = lake.shape[0] - 1 - np.argmax(lake[::-1], 0)
    out = np.zeros((h, w), bool)
    out[h // 2 :] = (r >= top[None]) & (r <= bottom[None] + 2)
    return out


def _ground_band(img: np.ndarray, contact: np.ndarray, like: np.ndarray, config: PriorConfig) -> np.ndarray:
    """Per column, the contact moved up over a flat band of another ground material (a sidewalk, a
    paved path, a gravel verge) that lies between the road and what stands above the horizon.

    Going down a column from the horizon, the first change from a structure's colours is taken as
    its foot; where that structure is light grey concrete over a light grey sidewalk, the first
    change is the kerb instead, and the facade comes out too near (a sidewalk 4-6 m off the street
    axis puts a facade at 6 m at 4 m). A row y above the contact c starts a ground band when:
    - a colour step lies at y (the largest between ``foot_deg`` below the horizon and c, at least
      ``band_step``): two materials meet along a line;
    - what lies between the horizon and y has the colours of what stands above the horizon (``like``
      for 80 % of those rows): the structure comes down to y;
    - the band is no wider than ``band_ratio`` (ground distance of y over that of c);
    - the columns that pass make runs of at least ``band_run_deg`` (a sidewalk runs along the
      street), and over each run the band is foreshortened ground texture: its mean vertical
      luminance gradient is at least ``band_texture`` and larger than its mean horizontal one. Seen
      at a depression angle a, a flat surface's texture is squeezed vertically by sin(a) (0.25-0.45
      for the sidewalks this reads), so paving joints, grain and speckle change faster down a column
      than along a row; a wall's plinth or a car's body faces the camera, and facades, doors, posts
      and trunks make vertical edges (larger horizontal gradients). Judged per run, not per column:
      one column's few rows of texture are too noisy to tell the ratio of a rendered sidewalk (1.4)
      from 1.
    img: [H, W, 3] the panorama; contact: [W] rows (unsmoothed);
    like: [R, W] bool, rows H/2 .. H/2 + R within ``structure_eps`` of the structure above the
    horizon. Returns the new contact rows. [W] float"""
    h, w = img.shape[:2]
    r1 = h // 2 + like.shape[0]
    k = max(2, h // 128)  # rows averaged either side of a step (4 at 512 rows), and left out at the
    # band's edges when its texture is read
    rows = np.arange(h // 2, r1)
    c = np.clip(np.floor(contact).astype(np.int64), h // 2, r1)
    # the colour step at each row boundary y (between y - 1 and y), from cumulative sums down columns
    # unsmoothed colour (``_features`` blurs a step over 5 rows); the k-row means average texture out
    raw = img[h // 2 - k : r1 + k].astype(np.float64)
    lum3 = raw.mean(-1, keepdims=True)
    f = np.concatenate([(raw / np.maximum(lum3 * 3, 1e-3))[..., :2], lum3], -1)
    cs = np.concatenate([np.zeros((1, w, 3)), np.cumsum(f, 0)], 0)
    y = rows - (h // 2 - k)
    step = (np.abs((cs[y] - cs[y - k]) - (cs[y + k] - cs[y])) / k).max(-1)  # [R, W]
    # the step at least foot_deg below the horizon (a facade on a band is then nearer than 30 m: a band
    # farther off is a few rows thin, and a step nearer the horizon is a facade's storey or window row)
    foot = max(k + 1, round(max(config.foot_deg, 1.0) / 180 * h))
    minband = max(2, round(config.gap * h / 512) // 4)  # the thinnest band looked for (4 rows at 512)
    ok_rows = (rows[:, None] >= h // 2 + foot) & (rows[:, None] <= c[None] - minband)
    sc = np.where(ok_rows, step, -1.0)
    t = h // 2 + np.argmax(sc, axis=0)
    ok = sc.max(0) >= config.band_step
    # the structure above comes down to the step
    above = (rows[:, None] < t[None]) & (rows[:, None] >= h // 2)
    ok &= (like & above).sum(0) >= 0.8 * np.maximum(above.sum(0), 1)
    # no wider than band_ratio
    lat = _latitudes(h)
    ok &= np.tan(-lat[np.minimum(c, h - 1)]) <= config.band_ratio * np.tan(-lat[t])
    # foreshortened texture inside the band, away from its edges (the kerb's face, the blended step)
    # at a fixed angular scale (about 512 rows, 0.35° a pixel): a paving pattern resolved at 2048
    # columns shows its joints, whatever their direction, where 1024 columns show the pavers' shading
    fs = max(1, round(h / 512))
    hs, ws = h // fs, w // fs
    lum = img[: hs * fs, : ws * fs].mean(-1).reshape(hs, fs, ws, fs).mean((1, 3)).astype(np.float64)
    gy, gx = (np.repeat(np.repeat(np.abs(g), fs, 0), fs, 1) for g in np.gradient(lum))
    gy, gx = (np.pad(g, ((0, h - hs * fs), (0, w - ws * fs)), mode="edge")[h // 2 : r1] for g in (gy, gx))
    scale = h / (512.0 * fs)  # per-pixel gradients of smooth shading shrink as the rows grow
    inside = (rows[:, None] >= t[None] + k) & (rows[:, None] < c[None] - k)
    ok &= inside.sum(0) >= 2
    # the candidates make runs along the street (gaps of a few columns do not break a run: a post, a
    # stripe of a facade whose foot was found); the texture is judged over each run at once (a
    # column's few rows of texture are too noisy to tell a ratio of 1.4 from 1)
    kc = max(3, w // 128) | 1
    runs = ndimage.binary_closing(np.concatenate([ok, ok, ok]), np.ones(kc, bool))[w : 2 * w]
    lab, nl = ndimage.label(runs)
    if nl > 1 and runs[0] and runs[-1]:  # one run across the seam
        lab[lab == lab[-1]] = lab[0]
    if nl == 0:
        return contact
    sel = inside & ok[None]
    n = np.bincount(lab, sel.sum(0), nl + 1)
    my = np.bincount(lab, (gy * sel).sum(0), nl + 1) / np.maximum(n, 1) * scale
    mx = np.bincount(lab, (gx * sel).sum(0), nl + 1) / np.maximum(n, 1) * scale
    size = np.bincount(lab, minlength=nl + 1)
    good = (size >= max(3, round(config.band_run_deg / 360 * w))) & (my >= config.band_texture) & (my > mx)
    good[0] = False
    ok &= good[lab]
    return np.where(ok, t.astype(np.float64), contact)


def ground_contact(
    panorama: Panorama,
    sky: np.ndarray,
    config: PriorConfig,
    tolerance: float | None = None,
    structure: bool = False,
    feats: np.ndarray | None = None,
) -> np.ndarray:
    """Per column, the row where the ground meets what stands on it (scanning up from the bottom).

    Returns:
        Row index per column (the first non-ground row above the ground), float64, in [0, H]. [W]
    """
    img = panorama.image
    h, w = img.shape[:2]
    lat = _latitudes(h)
    sample = np.broadcast_to((lat < -math.radians(config.ground_lat_deg))[:, None], (h, w))
    feats = _features(img) if feats is None else feats
    dist = _colour_model(img, sample, feats, config.ground_shade)
    tol = config.ground_tolerance if tolerance is None else tolerance
    ground_like = (dist < tol) & ~sky & (lat < 0)[:, None]
    gap = max(2, round(config.gap * h / 512))
    # scan from the bottom up: flip rows
    # from the horizon down, the first stretch of ground-like rows: objects stand on the nearest
    # ground below them (scanning up from the camera's feet stops at any shadow or path instead)
    run = max(2, gap // 2)
    if structure and config.structure_eps > 0:
        d2 = _structure_distance(feats, config.structure_band_deg)
        like = d2 <= config.structure_eps**2
        r1 = h // 2 + d2.shape[0]
        if config.vertical_share > 0:
            # below the horizon, what has the colours of the structure above it and vertical edges
            # around it is that structure coming down to its foot, however ground-like its colour (a
            # concrete facade over a grey street): it is not ground
            vert = _vertical_edges(feats[..., 2], config.vertical_edge)
            share = ndimage.uniform_filter(vert.astype(np.float32), size=(max(3, h // 32), 9))
            ground_like[h // 2 : r1] &= ~(like & (share[h // 2 : r1] > config.vertical_share))
        contact = h // 2 + _first_run(ground_like[h // 2 :], run)
        # the structure ends (at the latest) where a run of pixels matches none of its colours
        end = h // 2 + _first_run(~like, run)
        contact = np.minimum(contact, np.where(end >= r1, h, end))
    else:
        contact = h // 2 + _first_run(ground_like[h // 2 :], run)
    # a fold needs something that stands up to the horizon (a tree, a wall): a dark patch, a rock
    # or a shadow on the ground does not interrupt the ground plane
    band = slice(max(0, h // 2 - 2 * gap), h // 2)
    tall = (~ground_like[band] & ~sky[band]).mean(0) > 0.8
    contact = np.where(tall, contact, h // 2)
    if structure and config.structure_eps > 0 and config.foot_deg > 0:
        # what stands up to the horizon and keeps its own colours for a long way below it (at least
        # ``foot_deg``) before a step to others is standing there, however ground-like its colour: a
        # plain brick or stone facade over a paved street ends at its foot
        standing = (~sky[band]).mean(0) > 0.8
        long = (end < r1) & (end - h // 2 >= config.foot_deg / 180 * h)
        # green above the horizon that carries on below it is grass on rising ground, not a facade
        up = slice(max(0, h // 2 - round(config.structure_band_deg / 180 * h)), h // 2)
        green = (img[up, :, 1] > img[up, :, 0]) & (img[up, :, 1] > img[up, :, 2]) & ~sky[up]
        long &= green.mean(0) < config.foot_green
        contact = np.where(standing & long, np.maximum(end, contact), contact)
    if structure and config.structure_eps > 0 and config.band_step > 0:
        # a sidewalk or a path between the road and the structure is ground (see ``_ground_band``)
        contact = _ground_band(img, contact, like, config)
    return _smooth_line(np.clip(contact, 0, h), max(3, w // 128) | 1)


def outdoor_prior(
    panorama: Panorama, eye_height: float, config: PriorConfig, sky: np.ndarray, columns: np.ndarray | None = None
) -> np.ndarray:
    """Ground plane + pop-up folds at the ground contact + far cap; sky is set by the caller.
    ``columns``: [W] bool, the columns seen where the rest is a made-up backdrop (None: all). [H, W] float32"""
    h = panorama.height
    lat = _latitudes(h)
    feats = _features(panorama.image)  # once: the contact, terrain, segments and water all read it
    img = panorama.image
    leaf = (img[..., 1] > img[..., 0]) & (img[..., 1] > img[..., 2])  # foliage: green over red and blue
    contact = ground_contact(panorama, sky, config, structure=True, feats=feats)
    # latitude of the contact line (centre of the first non-ground row); at or above the horizon: far
    lat_c = math.pi / 2 - math.pi * (contact + 0.5) / h
    # a contact this close to the horizon cannot be told from none: the column floats (a crown over
    # far ground, a ridge beyond the horizon) and stands at fold_far, unless an overhang reaches it
    floating = lat_c >= -math.radians(config.contact_min_deg)
    vshare = _vertical_share(feats, sky, config)
    rock, e_s, steep = _terrain_columns(panorama.image, sky, config, feats, vshare)
    terrain = rock if config.terrain_far > 0 else np.zeros(panorama.width, bool)
    with np.errstate(divide="ignore"):
        d = np.where(floating, config.fold_far, eye_height / np.tan(np.maximum(-lat_c, 1e-6)))
    d = np.clip(d, config.min_wall, config.contact_far)
    # a structure whose foot is near is a wall (a facade across a street), not a mountainside
    far_foot = floating | (d >= config.terrain_foot)
    if config.terrain_steep_deg < 90:
        # a steep wall's foot is measured over its window: a column or two of false near contact (a
        # shadow, a shrub) under a wall whose foot is far around it is that wall too
        k = max(3, round(config.terrain_win_deg / 360 * panorama.width)) | 1
        far_foot |= steep & (ndimage.median_filter(far_foot.astype(np.uint8), size=k, mode="wrap") > 0)
    occluded = np.zeros(panorama.width, bool)
    if config.occluded_share > 0 and steep.any():
        occluded, d_occ = _occluded_feet(d, steep, far_foot, vshare, config, columns)
        far_foot &= ~occluded
    terrain &= far_foot
    # terrain stands where its own foot is (a cliff's foot near the horizon is far), not under the
    # overhang of a nearby tree or boulder
    d_terrain = np.where(floating, config.terrain_float, np.minimum(d, config.terrain_float))
    # a steep wall's foot (see ``terrain_steep_deg``) is where the ground plane puts it, not capped at
    # terrain_float: a foot within contact_min_deg of the horizon is at least that far on level ground
    foot_far = max(config.terrain_float, eye_height / math.tan(math.radians(max(config.contact_min_deg, 0.1))))
    with np.errstate(divide="ignore"):
        plane = eye_height / np.tan(np.maximum(-lat_c, 1e-6))
    d_terrain = np.where(steep, np.where(floating, foot_far, np.clip(plane, config.terrain_float, foot_far)), d_terrain)
    if config.overhang_m > 0:
        d = np.where(floating, _overhang(d, config.overhang_m, panorama.width), d)
    if config.spread_deg > 0:
        # a fold is no farther than most of its neighbours: what overhangs (crowns, awnings) stands
        # where its support touches the ground, a few columns away
        k = max(3, round(config.spread_deg / 360 * panorama.width)) | 1
        d = np.minimum(d, ndimage.percentile_filter(d, config.spread_pct, size=k, mode="wrap"))
    d = np.where(terrain, d_terrain, d)
    if occluded.any():
        d = np.where(occluded, d_occ, d)
    down = np.sin(-lat)[:, None]
    with np.errstate(divide="ignore"):
        ground = np.where(down > 1e-6, eye_height / np.maximum(down, 1e-6), np.inf)
    rows = np.arange(h)[:, None]
    if config.segment_reach_m > 0:
        region = (rows < np.floor(contact)[None, :]) & ~sky & ~rock[None]
        ceiling = None
        if config.crown_near > 0:
            ceiling = (config.crown_top_deg, config.crown_top_max_deg, config.crown_near)
        seg = _segment_reach(
            feats,
            region,
            d,
            contact,
            config.segment_reach_m,
            config.segment_eps,
            config.segment_max_deg,
            ceiling=ceiling,
            leaf=leaf if config.segment_leaf > 0 else None,
            leaf_share=config.segment_leaf,
        )
        if ceiling is not None:
            seg, lift = seg
        fold = np.minimum(d[None, :], seg) / np.cos(lat)[:, None]
        if ceiling is not None:
            # a crown over the camera: its underside is a ceiling lift metres above the eye; only
            # foliage (green over red and blue) is a crown (a facade's storeys are bands of colour too)
            with np.errstate(divide="ignore", invalid="ignore"):
                under = lift / np.sin(np.maximum(lat, 1e-6))[:, None]
            # a crown over the camera fills the sky up to crown_sky_deg in its columns (a conifer
            # seen from the side ends lower, and its tiers' cones face the camera)
            over = e_s >= math.radians(config.crown_sky_deg)
            fold = np.where(leaf & over[None] & np.isfinite(under), np.minimum(fold, under), fold)
    else:
        fold = d[None, :] / np.cos(lat)[:, None]
    if terrain.any():
        fold = np.where(terrain[None], _slope(d, lat_c, e_s, _crest(d, e_s, config), lat), fold)
    if (config.terrain_mound > 0 or config.terrain_object_aspect > 0) and (terrain & steep).any():
        fold = _before_walls(fold, panorama.image, feats, sky, contact, d, terrain, steep, e_s, eye_height, config)
    if config.water_drop > 0:
        # water lies below the bank the camera stands on (see ``water_drop``)
        with np.errstate(divide="ignore"):
            lake = (eye_height + config.water_drop) / np.maximum(down, 1e-6)
        ground = np.where(_water(panorama.image, sky, config, feats), lake, ground)
    depth = np.where(rows >= np.floor(contact)[None, :], np.minimum(ground, config.fold_far), fold)
    return depth.astype(np.float32)


def _step_edges(img: np.ndarray, rows: int = 256) -> np.ndarray:
    """Evidence of a horizontal region boundary at each pixel of a downsampled panorama: the colour
    difference between the bands just above and just below it in its column (H/32 rows each), in
    [0, 1], the upper and the lower half each scaled by its own 90th percentile and clipped (a
    ceiling-wall line is often fainter than a patterned floor, and a faint line that runs along a
    whole wall must outweigh the few strong edges of window tops below it: everything on a wall is
    lower than its ceiling line, so such edges pull a wall away). Bands average texture out (wood
    grain, a checkered rug's squares), a step between two regions (ceiling and wall, wall and floor)
    remains.
    [rows, 2 * rows] float32"""
    h, w = img.shape[:2]
    f = max(1, h // rows)
    small = img[: h // f * f, : w // f * f].reshape(h // f, f, w // f, f, 3).mean((1, 3))
    sm = ndimage.gaussian_filter(small.astype(np.float32), (1.0, 1.0, 0))
    hh = sm.shape[0]
    k = max(2, hh // 32)
    c = np.concatenate([np.zeros((1,) + sm.shape[1:], np.float32), np.cumsum(sm, 0)], 0)
    y = np.arange(hh)
    a0, b1 = np.clip(y - k, 0, hh), np.clip(y + 1 + k, 0, hh)
    above = (c[y] - c[a0]) / np.maximum(y - a0, 1)[:, None, None]
    below = (c[b1] - c[np.minimum(y + 1, hh)]) / np.maximum(b1 - y - 1, 1)[:, None, None]
    e = np.abs(above - below).sum(-1)
    for sl in (slice(0, hh // 2), slice(hh // 2, None)):
        e[sl] = np.minimum(e[sl] / (np.percentile(e[sl], 90) + 1e-6), 1.0)
    return ndimage.gaussian_filter1d(e, 1.0, axis=0).astype(np.float32)


def _box_distance(theta: float, walls: np.ndarray, dirx: np.ndarray, dirz: np.ndarray) -> np.ndarray:
    """Horizontal distance from the camera to the walls of boxes, along each column's direction.

    Args:
        theta: angle of the box's first axis, radians.
        walls: (+u, -u, +v, -v) wall distances, metres. [N, 4] (or [4])
        dirx, dirz: the columns' horizontal directions. [W]

    Returns:
        Distance per box and column, metres. [N, W] (or [W])
    """
    wl = np.atleast_2d(walls)
    u = dirx * math.cos(theta) + dirz * math.sin(theta)
    v = -dirx * math.sin(theta) + dirz * math.cos(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        tu = np.where(u > 1e-9, wl[:, 0:1] / u, np.where(u < -1e-9, wl[:, 1:2] / -u, np.inf))
        tv = np.where(v > 1e-9, wl[:, 2:3] / v, np.where(v < -1e-9, wl[:, 3:4] / -v, np.inf))
    d = np.minimum(tu, tv)
    return d if np.ndim(walls) == 2 else d[0]


def _column_share(columns: np.ndarray, n: int) -> np.ndarray:
    """A [W] bool mask of columns as the share of each of ``n`` equal groups that it covers. [n]"""
    edges = np.linspace(0, len(columns), n + 1)
    c = np.r_[0.0, np.cumsum(columns.astype(np.float64))]
    idx = np.round(edges).astype(int)
    return (c[idx[1:]] - c[idx[:-1]]) / np.maximum(idx[1:] - idx[:-1], 1)


def _room_box(
    img: np.ndarray, eye_height: float, config: PriorConfig, columns: np.ndarray | None = None
) -> tuple[list[tuple[float, np.ndarray, float]], str, float]:
    """A Manhattan room box fitted to the panorama's ceiling-wall and floor-wall lines.

    In an equirect, a box wall at horizontal distance d in a column meets the floor at latitude
    -atan(h_eye / d) and the ceiling at atan(c / d) (c: ceiling above the eye). The box is scored by
    the boundary evidence (``_step_edges``) along both predicted curves over every column, so the
    furniture that hides part of a line does not move the wall, and the walls stay one rectangle.
    1. The shape (angle of the walls, mod 90°, and the four wall distances in units of c) from the
       ceiling-wall line alone: it is scale-free and rarely hidden by furniture.
    2. The scale from the floor-wall line, where the eye height is known, among the boxes whose
       ceiling lies between ``room_height_min`` and ``room_height_max`` above the floor: rugs,
       floor patterns and furniture bases aligned with the room are smaller boxes of the same
       shape, a room lower than a person's reach is not a room.
    3. A second box from the floor-wall line first (its wall distances in metres, the eye height
       known), then the ceiling's height from the ceiling-wall line. It is taken alone when the two
       lines together carry at least ``room_floor_margin`` more evidence along it: where the ceiling
       is dark and hung with rigging, or its line is lost in a vault or a white cove, the ceiling's
       spurious lines set the shape and a wall came 0.4-1.2 m from the camera (Blender's and viser's
       photo studios, viser's Lebombo living room), while their floor-wall lines are plain.
    4. When neither box carries ``room_floor_margin`` more evidence than the other, both are kept and
       the room is their intersection (per ray, the nearer exit): the evidence cannot tell them
       apart, and a wall put too far costs without bound where one put too near costs at most its
       own distance. Each box alone is often right about some walls and wrong about others (a chair
       rail or a beam taken for the floor or ceiling line puts a wall too far, a rug's edge one too
       near), and the intersection keeps the nearer reading of each.

    ``columns`` ([W] bool, optional): the columns whose evidence counts (a photo's, where the rest of
    the sphere is a backdrop that carries each of the photo's rows round the sphere: its lines are a
    round room at one distance, and outweighed the photo's own walls).

    Returns:
        A tuple: the **boxes** (one or two, each theta in radians, walls +u, -u, +v, -v in metres,
        ceiling in metres above the eye), which of them were kept (``"ceiling-first"``,
        ``"floor-first"`` or ``"both"``) and the evidence **score** of the ceiling fit (mean over
        columns, 0..1).
    """
    e = _step_edges(img)
    hs, ws = e.shape
    # the evidence is a mean over columns: every column, or where only some columns were seen (a
    # photo in a backdrop), those columns (numpy's sums, not a BLAS product: the same bytes on every CPU)
    share = None if columns is None else _column_share(columns, ws)
    if share is not None and share.sum() <= 0:
        share = None

    def wmean(v: np.ndarray) -> np.ndarray:  # [N, ws] -> [N]
        return v.mean(1) if share is None else (v * share).sum(1) / share.sum()

    lon = 2 * np.pi * (np.arange(ws) + 0.5) / ws - np.pi
    dirx, dirz = np.sin(lon), -np.cos(lon)
    cols = np.arange(ws)
    grid = np.geomspace(0.25, 12.0, 48)  # wall distances in units of the ceiling above the eye

    def rows(lat: np.ndarray) -> np.ndarray:
        return np.clip(np.round((np.pi / 2 - lat) / np.pi * hs - 0.5), 0, hs - 1).astype(np.int64)

    def ceil_score(theta: float, walls: np.ndarray) -> np.ndarray:  # walls [N, 4], ceiling at 1
        d = _box_distance(theta, walls, dirx, dirz)
        return wmean(e[rows(np.arctan(1.0 / d)), cols])

    def descend(score, sizes: np.ndarray, theta: float) -> tuple[float, np.ndarray]:
        # one square box at every size, then coordinate descent over each wall (vectorised per wall)
        cand = np.repeat(sizes[:, None], 4, 1)
        sc = score(theta, cand)
        best, walls = float(sc.max()), cand[int(np.argmax(sc))].copy()
        for _ in range(3):
            for k in range(4):
                cand = np.repeat(walls[None], len(sizes), 0)
                cand[:, k] = sizes
                sc = score(theta, cand)
                if sc.max() > best:
                    best, walls = float(sc.max()), cand[int(np.argmax(sc))].copy()
        return best, walls

    def fit_shape(theta: float) -> tuple[float, np.ndarray]:
        return descend(ceil_score, grid, theta)

    fits = [(*fit_shape(t), t) for t in np.radians(np.arange(0.0, 90.0, 3.0))]
    score, walls, theta = max(fits, key=lambda f: f[0])
    for t in theta + np.radians([-1.0, 1.0]):  # refine the angle between the coarse steps
        f = (*fit_shape(float(t)), float(t))
        if f[0] > score:
            score, walls, theta = f

    def floor_score(theta: float, walls: np.ndarray) -> np.ndarray:  # metric walls [N, 4]
        return wmean(e[rows(-np.arctan(eye_height / _box_distance(theta, walls, dirx, dirz))), cols])

    # the scale: the ceiling above the eye (c) that puts the floor-wall line on the evidence
    cs = np.linspace(max(config.room_height_min - eye_height, 0.1), max(config.room_height_max - eye_height, 0.2), 64)

    def usual_scale(theta: float, unit: np.ndarray) -> tuple[int, np.ndarray]:
        # the index into cs of the ceiling height that scales the box ``unit`` (walls for a ceiling
        # 1 m above the eye) to the floor-wall line, and the evidence at every cs. A chair rail, a
        # dado, wainscoting or a run of cabinets draws a line round the walls above the floor-wall
        # line, sometimes stronger than it: the floor line of a taller room of the same shape. Of the
        # local peaks of evidence within room_floor_peak of the strongest, the strongest of a usual
        # room height is taken (see ``room_floor_peak``)
        fsc = floor_score(theta, unit[None] * cs[:, None])
        pick = int(np.argmax(fsc))
        if 0 < config.room_floor_peak <= 1:
            local = fsc >= np.maximum(np.r_[fsc[1:], -1.0], np.r_[-1.0, fsc[:-1]])
            room = cs + eye_height
            usual = (room >= config.room_typical_min) & (room <= config.room_typical_max)
            cand = local & usual & (fsc >= config.room_floor_peak * fsc.max())
            if cand.any():
                pick = int(np.argmax(np.where(cand, fsc, -1.0)))
        return pick, fsc

    pick, fsc = usual_scale(theta, walls)
    c = float(cs[pick])
    walls = walls * c
    first = (float(theta), walls, c)
    if config.room_floor_margin < 0:
        return [first], "ceiling-first", score

    metres = np.geomspace(config.min_wall, 25.0, 48)

    f_score, f_walls, f_theta = max(
        ((*descend(floor_score, metres, float(t)), float(t)) for t in np.radians(np.arange(0.0, 90.0, 3.0))),
        key=lambda f: f[0],
    )
    # its ceiling: the height above the eye that puts the ceiling-wall line on the evidence (as the
    # first box's scale came from the floor line)
    csc = ceil_score(f_theta, f_walls[None] / cs[:, None])
    c2 = float(cs[int(np.argmax(csc))])
    if 0 < config.room_floor_peak <= 1:
        # its floor line may be a rail's too: its shape (in units of that ceiling) scaled as the first's
        p2, fsc2 = usual_scale(f_theta, f_walls / c2)
        if fsc2[p2] < fsc2.max():  # only where a usual height was preferred to the strongest line
            f_walls, c2 = f_walls / c2 * cs[p2], float(cs[p2])
    second = (f_theta, f_walls, c2)
    # evidence on both lines: the first box's ceiling fit (its line does not move with the scale)
    # and floor fit, against the second's floor fit and ceiling fit
    lead = f_score + float(csc.max()) - (score + float(fsc.max()))
    if lead > config.room_floor_margin:
        return [second], "floor-first", float(csc.max())
    if lead >= -config.room_floor_margin:
        return [first, second], "both", score
    return [first], "ceiling-first", score


def indoor_prior(
    panorama: Panorama, eye_height: float, config: PriorConfig, columns: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """A room box: floor at -eye height, ceiling and four walls measured from the panorama (from
    ``columns`` only, [W] bool, when given). [H, W]"""
    h, w = panorama.height, panorama.width
    lat = _latitudes(h)
    lon = 2 * np.pi * (np.arange(w) + 0.5) / w - np.pi
    boxes, kept, score = _room_box(panorama.image, eye_height, config, columns)
    if score < 0.05:  # no ceiling-wall line anywhere (a blank image): a default room
        boxes, kept = [(0.0, np.full(4, 3.0), config.ceiling_height - eye_height)], "default"
    boxes = [(theta, np.clip(walls, config.min_wall, config.far), ceiling) for theta, walls, ceiling in boxes]
    up = np.sin(lat)[:, None]
    with np.errstate(divide="ignore"):
        r_floor = np.where(up < -1e-6, eye_height / np.maximum(-up, 1e-6), np.inf)
    depth = np.broadcast_to(r_floor, (h, w))
    for theta, walls, ceiling in boxes:  # two boxes: their intersection, the nearer exit per ray
        dbox = _box_distance(theta, walls, np.sin(lon), -np.cos(lon))  # horizontal distance per column
        with np.errstate(divide="ignore"):
            r_ceil = np.where(up > 1e-6, ceiling / np.maximum(up, 1e-6), np.inf)
        depth = np.minimum(depth, np.minimum(r_ceil, dbox[None, :] / np.cos(lat)[:, None]))
    theta, walls, _ = boxes[0]
    facts = {
        "room_box": kept,
        "room_walls_m": [round(float(v_), 3) for v_ in walls],
        "room_angle_deg": round(math.degrees(theta), 2),
        "ceiling_above_eye_m": round(min(b[2] for b in boxes), 3),
        "room_line_score": round(score, 3),
    }
    if len(boxes) == 2:
        facts["room_walls2_m"] = [round(float(v_), 3) for v_ in boxes[1][1]]
        facts["room_angle2_deg"] = round(math.degrees(boxes[1][0]), 2)
    return np.minimum(depth, config.far).astype(np.float32), facts


def prior_depth(
    panorama: Panorama,
    eye_height: float = 1.6,
    config: PriorConfig = PriorConfig(),
    columns: np.ndarray | None = None,
    seen: np.ndarray | None = None,
) -> tuple[DepthMap, dict]:
    """Weight-free depth for a panorama (see the module docstring).

    ``columns`` ([W] bool, optional): the columns actually seen, where the rest is a backdrop (a
    photo world, a partial panorama): indoors, the room box is measured on them alone; outdoors, a
    hidden foot's flank beyond them is unknown (``_occluded_feet``).
    ``seen`` ([H, W] bool, optional): the pixels actually seen, where the rest is such a backdrop:
    it is no evidence of a sky overhead (``sky.is_indoor``) nor in the image (``sky.seen_sky``).

    Returns:
        A tuple: **depth** (metres, +inf on sky) and **facts** for the manifest (scene, how it was decided...).
    """
    if eye_height <= 0:
        raise InputError(f"eye height {eye_height} m must be > 0")
    if config.scene not in ("auto", "indoor", "outdoor"):
        raise InputError(f"depth.scene must be auto, indoor or outdoor, not {config.scene!r}")
    if config.far <= eye_height or config.min_wall <= 0:
        raise InputError(f"depth.far ({config.far} m) must exceed the eye height and depth.min_wall must be > 0")
    sky = sky_mask(panorama)
    indoor, facts = decide_scene(panorama, sky, seen, config.scene)
    facts = {
        "scene": "indoor" if indoor else "outdoor",
        "scene_from": config.scene if config.scene != "auto" else "auto",
        **facts,
    }
    if indoor:
        depth, more = indoor_prior(panorama, eye_height, config, columns)
        facts.update(more)
        sky = np.zeros_like(sky)
    else:
        sky = seen_sky(panorama, sky, seen)
        depth = outdoor_prior(panorama, eye_height, config, sky, columns)
        # outdoors only (indoors, panels of a pale ceiling would pass for it): the sky seen under and
        # between crowns, which the sky grown from the top does not reach. It is set to infinity after
        # the folds are placed, on the sky they were tuned with: letting the folds see it makes a crown
        # over such a gap float, and on the independent hills that put a near crown at 8.5 m instead
        # of 8.1 m (true 6.4 m; AbsRel 0.1073 -> 0.1078, δ1 0.847 -> 0.841)
        gaps = sky_gaps(panorama, sky)
        facts["sky_gaps"] = round(float(gaps.mean()), 4)
        sky = sky | gaps
        depth[sky] = np.inf
    return DepthMap(depth, sky), facts


def _run(ctx: StageContext) -> StageResult:
    pano = ctx.inputs["panorama"]
    sem = ctx.inputs.get("semantics")
    shape = (pano.height, pano.width)
    depth, facts = prior_depth(
        pano, ctx.request.eye_height, ctx.config, photo_columns(sem, shape), seen_pixels(sem, shape)
    )
    rep = {**depth_report(depth), **facts, "note": "weight-free geometric prior, not a learnt depth estimate"}
    return StageResult(artifacts={"depth": depth}, report=rep)


register_backend(
    Backend(
        stage="depth",
        name="prior",
        run=_run,
        # 2: crowns over the camera are ceilings (crown_top_deg); 3: sky.py closes faint
        # skylines, a cream ceiling is no sky; 4: rock before steep walls stands at the wall's foot;
        # 5: a facade behind a sidewalk stands on the sidewalk, not on the kerb (_ground_band)
        # 6: a fold's distance spreads sideways only through foliage (segment_leaf)
        # 7: outdoors, sky seen under and between crowns is sky (sky_gaps)
        # 8: sky round 4 (a studio's dim or black ceiling with a cool cast is no blue sky; a town's
        # glow in a dim night sky is sky); shaded gravel is no water (water_texture); no steep wall
        # under a closed canopy (terrain_closed_deg); a room box from the floor-wall line where it
        # carries more evidence (room_floor_margin)
        # 9: where neither room box carries room_floor_margin more evidence, the room is both
        # boxes' intersection; 10: sky.py measures edges at 512-767 rows on larger panoramas;
        # 11: a built steep wall's foot hidden by a parked car lies between its neighbours' feet;
        # 12: the room boxes' scale prefers a usual room height among strong floor lines;
        # 13: a photo world's room is measured on the photo's columns alone; 14: a bright piece
        # outlined by hard edges all round is a lit surface, not a cloud (sky.OUTLINE_HARD); 15: under
        # a made-up zenith (a photo world, a partial panorama) a pale sky that is not blue is a
        # ceiling unless the horizon is open (sky.is_indoor's zenith_seen); 16: there, a seen piece of
        # sky with no clear blue is dropped where the seen sky is mostly blue (sky.seen_sky); 17: each
        # seen piece judged on its own pixels: barely blue or far darker beside a bright blue sky, or
        # with hard edges inside it (a facade's windows) and no daylight sky, it is no sky; 18: a
        # hidden foot whose other flank lies beyond the seen columns takes its seen flank's distance
        version="18",
        config=PriorConfig,
        summary="weight-free prior: ground plane + pop-up folds + sky outdoors, a room box indoors (decided itself)",
    )
)

__all__ = ["PriorConfig", "prior_depth"]
