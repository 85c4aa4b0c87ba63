"""Sky: where the panorama sees nothing but the sky dome (depth +inf), and whether it is indoors.

Cues, combined:
- colour: blue-ish, or bright and unsaturated (overcast, haze, white clouds), or bright and warm;
  smooth (little texture). When no such sky covers the zenith (or it is dim), dark pixels too (a
  night sky, the black sky of space, a black fill where a stitch left the sky out), blue-ish ones
  at any brightness and warm ones at any saturation (a sunset's orange and pink);
- stars: point-like specks on a dark background are removed first (a grey opening 0.7° wide), so a
  starry sky is as smooth as a black one;
- position: above the horizon, in one piece with the top of the panorama (sky does not float
  below a roof); rows at the top that are each one flat colour (a crop filled with a colour) join
  the sky only where the sky carries on below them;
- skylines: a faint stretch of edge that continues a hard one closes the skyline (hysteresis);
  what only such a stretch joined to the sky stays sky where it has the sky's colour at its
  elevation (pockets of blue between clouds), not where it is grey (snow and rock as bright as
  the sky, dark facades under a blue night sky);
- distance, when a depth estimate exists: the sky is the farthest thing in view;
- gaps (:func:`sky_gaps`, outdoors only, once the scene is decided): sky that a crown closes off from
  above (seen under and between crowns, between trunks, through a canopy) is sky where it has the open
  sky's colour at its elevation and something that is not sky-coloured covers it.
An interior never has sky: :func:`is_indoor` decides from what covers the zenith. A zenith covered
by something that is not daylight-coloured (black, dark, a sunset's orange: a lamp-lit ceiling looks
the same) is a sky only with a sign of one: a skyline near the horizon, a clear blue tint, stars
where no lamp hangs, or dozens of lights (a night street's lit windows). A daylight sky that is not
blue (grey, white: a lit white ceiling looks the same) is a ceiling when it closes in a smooth
ring well above the horizon or carries on below the horizon as a wall; a bright one of a warm tint
(cream, beige: a lamp-lit or cream ceiling) needs a sign of a sky, as a dark one does.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from ..types import Panorama

log = logging.getLogger(__name__)


def _lum(img: np.ndarray) -> np.ndarray:
    return 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]


# a sky darker than this (luminance) is "dark": night, space, a black fill
DARK = 0.15
# point-like features narrower than this, degrees, are stars (the full moon is 0.5°; a lamp a few
# metres away is wider)
STAR_DEG = 0.7
# this many lit blobs in a dark "sky" are the lit windows of a night street, not a room's lamps
STREET_LIGHTS = 24
# an edge at least this share of the hard threshold that continues a hard edge may close a skyline
WEAK = 0.6
# share of a bright piece's outline that is hard edge above which it is a lit surface, not a cloud
# (see _rejoin): sunlit facades 0.92-0.99; clouds as pale as them at most 0.85
OUTLINE_HARD = 0.9
# seen_sky, where only part of the sphere was seen: the mean luminance under which a blue-tinted
# piece over sunlit vegetation is no sky; how far from a facade's windows (degrees) a sky joined to
# it begins, and how bright (luminance) that sky is (a clipped or near-white one)
DIM_SKY = 0.3
HOLE_REACH_DEG = 1.0
WHITE_SKY = 0.8


def _star_size(h: int) -> int:
    """Odd width, pixels, of the opening that removes stars at ``h`` rows (3 at 512 rows)."""
    return max(3, int(round(STAR_DEG * h / 180.0)) | 1)


def _opened(img: np.ndarray, size: int) -> np.ndarray:
    """Grey opening (minimum then maximum filter, wrapped across the seam) of each channel. [H, W, C]"""
    lo = ndimage.minimum_filter(img, size=(size, size, 1), mode=("nearest", "wrap", "nearest"))
    return ndimage.maximum_filter(lo, size=(size, size, 1), mode=("nearest", "wrap", "nearest"))


def _stars(img: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point-like bright specks on a dark background, and the image with them removed.

    Args:
        img: the panorama or its upper rows. [R, W, 3]
        h: the panorama's height (the opening's width is in degrees).

    Returns:
        A tuple: **stars** ([R, W] bool), **clean** (the image, specks replaced by their
        background; [R, W, 3] float32) and **base** (the opening's luminance, [R, W]).
    """
    lum = _lum(img)
    if not (lum < DARK).any():  # no dark background, no stars (and no opening to pay for)
        return np.zeros(lum.shape, bool), img, lum
    base = _opened(img, _star_size(h))
    lb = _lum(base)
    star = (lum - lb > 0.08) & (lb < DARK)
    return star, np.where(star[..., None], base, img), lb


def _edges(img: np.ndarray, h: int) -> tuple[np.ndarray, float]:
    """Edge strength (the colour gradient's norm over sqrt(3), 3x3 maximum) of ``img`` (the panorama,
    ``h`` rows high, or its upper rows) and the threshold above which an edge is hard. ([R, W], float)"""
    # edges in colour, not only in brightness: a grey facade against a blue sky of the same
    # brightness is a hard edge too
    # From 1024 rows up the gradient is taken at 512-767 rows (blocks of f x f pixels averaged) and
    # spread back, so that every cue here reads a skyline at the angular scale it was tuned at: a
    # skyline blurred over two pixels at 1024 rows (a soft lens, an upscaled stitch, a photo placed
    # in a larger sphere) has half the per-pixel gradient, and an independent rendered range 1-3 km
    # away under haze, a hard edge at 512 rows, flowed into the sky at 1024 (sky IoU 0.996 -> 0.879)
    f = max(1, int(h // 512))
    r, w = img.shape[:2]
    if f > 1 and r >= f and w >= f:
        rr, ww = r // f * f, w // f * f
        small = img[:rr, :ww].reshape(rr // f, f, ww // f, f, -1).mean((1, 3))
        hard, thr = _edges(small, h // f)
        hard = np.repeat(np.repeat(hard, f, 0), f, 1)
        hard = np.pad(hard, ((0, r - rr), (0, w - ww)), mode="edge")
        return hard, thr
    gy, gx = np.gradient(img, axis=(0, 1))
    # (the colour gradient's norm over sqrt(3): a grey step has the same strength as in brightness)
    hard = ndimage.maximum_filter(np.sqrt((gx**2 + gy**2).sum(-1) / 3.0), size=3)
    # per-pixel gradients of soft shading grow as the panorama gets smaller; step edges do not
    return hard, 0.06 * math.sqrt(min(max(512.0 / h, 1.0), 4.0))


def _soft(img: np.ndarray, h: int) -> np.ndarray:
    """1 where the colour varies smoothly, 0 on hard edges; ``img``: the panorama (``h`` rows high) or
    its upper rows. [R, W] float32

    Clouds are textured but soft; walls, leaves and windows have hard edges: only hard edges
    (a strong local gradient of colour, so that a roofline between a blue sky and a grey facade of
    the same brightness still counts) count against the sky.
    """
    hard, thr = _edges(img, h)
    return np.clip(1.5 - hard / thr, 0.0, 1.0)


def _soft_and_weak(img: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_soft`, and the weak stretches of hard edges: pixels whose edge is at least ``WEAK`` of
    the hard threshold and that continue a hard edge (hysteresis, as a contour detector links a faint
    stretch of an outline to its strong parts). A skyline between a blue sky and pale rock or snow of
    the same brightness is a hard edge for most of its length and faint where the two colours come
    closest. ([R, W] float, [R, W] bool)"""
    hard, thr = _edges(img, h)
    strong = hard >= thr
    weak = ndimage.binary_propagation(strong, mask=hard >= WEAK * thr, structure=np.ones((3, 3), bool)) & ~strong
    return np.clip(1.5 - hard / thr, 0.0, 1.0), weak


def sky_colour(panorama: Panorama, dark: bool = False) -> np.ndarray:
    """Per-pixel sky likelihood from colour and sharp edges alone, in [0, 1]. [H, W] float32

    Args:
        panorama: the colour panorama.
        dark: also take dark pixels (a night or space sky; stars removed first) for sky.
    """
    _, img, _ = _stars(panorama.image.astype(np.float32), panorama.height)
    return (_hue_likelihood(img, dark) * _soft(img, panorama.height)).astype(np.float32)


def blue_sky_weight(px: np.ndarray) -> np.ndarray:
    """How much each pixel looks like a clear daylight sky's blue, by its colour alone: the colour
    likelihood of :func:`sky_colour` where the pixel is clearly blue, 0 elsewhere (a white ceiling or
    a grey facade is 0, so this is no sky detector: it picks the sky's own colour out of a mixed band
    of pixels). px: [..., 3] float in [0, 1]. [...] float32"""
    flat = np.asarray(px, np.float32).reshape(1, -1, 3)
    w = _hue_likelihood(flat) * _bluish(flat)
    return w.reshape(np.shape(px)[:-1]).astype(np.float32)


def _bluish(px: np.ndarray) -> np.ndarray:
    """Pixels ([..., 3]) of a clear blue: blue the strongest channel by a margin, not dark. [...] bool"""
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    # A faint cool cast (blue 0.03-0.1 over red) counts only in a bright pixel (luminance over 0.5,
    # a hazy daylight sky: the procedural seed-0 skies are (0.73, 0.79, 0.87)); in a dim one it is a
    # grey: Blender's studio HDRI, exposed to a mid-grey median (as every HDR file was until 2026-12;
    # a brightened photo of a studio is the same), has a dark grey ceiling of (0.33, 0.36, 0.40) that
    # closes in a ring as a ceiling does and was taken for a blue sky by this cue. A grey is told
    # from a ceiling by the ring, as a white or overcast sky is.
    lum = _lum(px)
    return (b >= 0.85 * g) & (lum > 0.2) & ((b >= r + 0.1) | ((b >= r + 0.03) & (lum > 0.5)))


def _hue_likelihood(img: np.ndarray, dark: bool = False) -> np.ndarray:
    """Sky likelihood from colour alone: blue-ish, or bright and unsaturated, or bright and warm;
    with ``dark``, also dark (night, space), blue-ish at any brightness (dusk) and warm at any
    saturation (a sunset's orange and pink), never green. [H, W]"""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    lum = _lum(img)
    sat = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    bluish = (b >= r) & (b >= 0.85 * g)
    blue = (bluish & (lum > 0.2)).astype(np.float32)
    grey = ((lum > 0.5) & (sat < 0.2)).astype(np.float32)
    warm = ((lum > 0.5) & (r >= g) & (g >= b) & (sat < 0.5)).astype(np.float32) * 0.7
    out = np.maximum(np.maximum(blue, grey), warm)
    if dark:
        green = (g > 1.1 * np.maximum(r, b)) & (g > 0.03)
        sunset = (lum > 0.25) & (r >= g) & (r >= b) & ((g >= b) | (sat < 0.5))
        night = ((lum < DARK) | bluish) & ~green
        out = np.maximum(out, np.maximum(night, 0.7 * sunset).astype(np.float32))
    return out


def _skyline_rows(cand: np.ndarray, gap: int) -> np.ndarray:
    """Per column, the first row where a run of ``gap`` non-candidate pixels begins (scanning from
    the top), H where there is none. [W] int"""
    h, w = cand.shape
    blocked = ~cand
    acc = np.zeros(w, np.int32)
    stop = np.full(w, h, np.int64)
    for y in range(h):  # one vectorised step per row (rows, not pixels)
        acc = np.where(blocked[y], acc + 1, 0)
        hit = (acc >= gap) & (stop == h)
        stop[hit] = y - gap + 1
    return stop


def fill_columns(sky: np.ndarray, cand: np.ndarray, gap: int = 3) -> np.ndarray:
    """Extend the sky down each column through short breaks (cloud texture, birds) of fewer than
    ``gap`` non-candidate pixels, stopping at the first longer break (the skyline). [H, W] bool"""
    h, w = sky.shape
    stop = _skyline_rows(cand, gap)
    top_sky = sky[0] | cand[0]
    rows = np.arange(h)[:, None]
    return sky | ((rows < stop[None, :]) & top_sky[None, :] & cand.any(0)[None, :] & (rows < h // 2))


def connected_to_top(mask: np.ndarray) -> np.ndarray:
    """The parts of ``mask`` connected to the panorama's top row, across the ±180° seam. [H, W] bool"""
    h, w = mask.shape
    pad = max(1, w // 8)
    lab, _ = ndimage.label(np.concatenate([mask, mask[:, :pad]], axis=1))
    top = np.unique(lab[0][lab[0] > 0])
    hit = np.isin(lab, top)
    out = hit[:, :w].copy()
    out[:, :pad] |= hit[:, w:]
    return out


def flat_rows(img: np.ndarray, tol: float = 0.02) -> int:
    """How many rows at the top of the panorama are each one flat colour across the whole width and
    end in a colour step across it (a crop filled with a colour: a cylindrical panorama padded to 2:1,
    a sky a stitch left out), fewer than half the rows; 0 when fewer than 2°."""
    h = img.shape[0]
    spread = (img[: h // 2].max(1) - img[: h // 2].min(1)).max(-1)  # [H/2]
    # (flat all the way down to the horizon: a sky without a feature, or a fill; colour decides)
    n = int(np.argmin(spread <= tol)) if not (spread <= tol).all() else 0
    if n < 2.0 * h / 180.0:
        return 0
    # a fill ends in a colour step across (almost) the whole width; flat rows of the sky's own colour
    # that end where something rises into them in a few columns are no fill
    step = np.abs(img[min(n + 2, h - 1)] - img[n - 1]).max(-1)
    return n if (step > 0.05).mean() >= 0.8 else 0


def _grow(
    like: np.ndarray,
    hue: np.ndarray,
    band: int,
    threshold: float,
    columns: bool = False,
    cut: np.ndarray | None = None,
    img: np.ndarray | None = None,
    strong: np.ndarray | None = None,
) -> np.ndarray:
    """Sky from a likelihood: candidates above the horizon in one piece with the top (and with a
    flat band of ``band`` rows at the top, where the sky carries on below it), columns filled through
    short breaks, enclosed pieces filled, the skyline given back. With ``columns``, the sky in each
    column also ends at its skyline (the first break of 3 non-candidate pixels): a dark sky may not
    flow around a faint stretch of skyline into the dark land below it. With ``cut`` (faint stretches
    of hard edges, [H, W] bool) and ``img`` (the colour, [R, W, 3]): what only a faint stretch of a
    skyline joins to the sky stays sky only in the sky's own colour (see :func:`_rejoin`; ``strong``, the
    hard edges, [R, W] bool, tells it a lit surface from a cloud). [H, W] bool"""
    h = like.shape[0]
    h2 = h // 2
    upper = (np.arange(h) < h2)[:, None]
    cand = (like > threshold) & upper

    def flood(band: int, cand: np.ndarray = cand) -> np.ndarray:
        # the band joins what touches it to the top; the columns are filled and end at the skyline of
        # the candidates themselves (a band of the sky's own colour must not bridge the edge under it)
        seed = cand.copy()
        seed[: band + 2 if band else 0] = True  # (and across the hard edge at its foot: 2 pixels)
        # (a fill of another colour is sky as a whole; one of the sky's own colour keeps its edges)
        fill = np.zeros_like(cand)
        fill[:band] = hue[:band] <= threshold
        out = fill_columns((connected_to_top(seed) & cand) | fill, cand) & upper
        if columns:
            # (what the candidates enclose - a lamp, a moon - is no skyline: it casts no shaft down its columns)
            out &= np.arange(h)[:, None] < _skyline_rows(seed | _enclosed(seed), 3)[None, :]
        return out

    sky = flood(band)
    if band and band < h2 * 8 // 9 and sky[band : band + 4].any(0).mean() < 0.3:
        # the band ends more than 10° above the horizon and meets no sky below it in most columns (a
        # room or a forest padded to 2:1): it is no sky
        band = 0
        sky = flood(0)
    if cut is not None and img is not None and (sky & cut).any():
        sky = _rejoin(sky, flood(band, cand & ~cut), img, night=columns, strong=strong)
    # what the sky encloses (cloud texture, birds, lamps) is sky too: non-sky pieces of the upper
    # half that do not reach down to the horizon
    ground_side = connected_to_top(~sky[:h2][::-1])[::-1]
    sky[:h2] |= ~ground_side
    # the hard-edge test blurs the skyline by a pixel or two (the gradient and its 3x3 maximum):
    # give the sky back the sky-coloured pixels next to it, up to the skyline's own edge
    reach = max(1, round(2 * h / 512))
    sky |= ndimage.binary_dilation(sky, iterations=reach, mask=(hue > threshold) & upper)
    return sky


def _rejoin(
    loose: np.ndarray, closed: np.ndarray, img: np.ndarray, night: bool = False, strong: np.ndarray | None = None
) -> np.ndarray:
    """The sky with its skylines closed (``closed``, [H, W] bool), and of what only a faint stretch of a
    skyline joined to it (the rest of ``loose``), each piece that has the sky's own colour. [H, W] bool

    A snowfield or pale rock under a blue sky can have the sky's brightness, so their skyline is a
    hard edge of colour alone, faint where the two come closest; through there the sky flows over
    the whole mountainside. Closing the skyline (hysteresis) cuts it off, and also pockets of sky
    between clouds near the horizon (cloud texture is a web of edges). The sky's colour at each
    elevation tells them apart: a pocket of sky is as blue as the open sky beside it, its clouds
    brighter than it; rock and snow as bright as the sky (those that passed for it) are grey (a sky's
    blue and brightness change with elevation, towards the horizon's haze, so the reference is taken
    row by row). A piece is kept when most of it has the sky's colour. (Snow brighter than the sky
    beside it is kept, as a cloud would be: it is left as it was.)

    A sunlit facade of pale brick or plaster is brighter than a blue sky too, and white like a cloud;
    but a cloud's outline is soft somewhere (that is how it came to be cut off: a web of faint
    edges), where a facade's is a hard edge all round (its roofline, its corners, the line of its
    shadow). With ``strong`` (the hard edges, [R, W] bool), a piece kept on brightness alone (most of
    it less blue than the sky) whose outline, holes filled, is hard edge over ``OUTLINE_HARD`` of its
    length is no cloud.
    """
    rows = img.shape[0]
    extra = loose & ~closed
    lab, n = ndimage.label(extra[:rows])
    sky_rows = closed[:rows]
    have = np.nonzero(sky_rows.sum(1) >= 8)[0]
    if not n:
        return closed
    if not len(have):  # (no open sky to compare with: as it was)
        return loose
    # the sky's colour row by row (rows with little closed sky take the nearest row below with enough)
    near = np.clip(np.searchsorted(have, np.arange(rows)), 0, len(have) - 1)

    def row_median(v: np.ndarray) -> np.ndarray:
        return np.nanmedian(np.where(sky_rows[have], v[have], np.nan), axis=1)[near]

    blue, lum = img[..., 2] - img[..., 0], _lum(img)  # how blue: a clear sky's blue, which rock and snow lack
    ref_blue, ref_lum = np.maximum(row_median(blue), 0.0), row_median(lum)
    # a pixel has the sky's colour when it is at most half as much less blue as the sky beside it (within
    # 0.04 where the sky is grey: an overcast sky's pockets), or is brighter than it (a cloud)
    bluish = blue >= (ref_blue - np.maximum(0.5 * ref_blue, 0.04))[:, None]
    like = bluish.copy()
    if not night:  # (at night lit facades and land are brighter than the sky)
        like |= lum >= (ref_lum + 0.05)[:, None]
    idx_all = np.arange(1, n + 1)
    share = np.asarray(ndimage.mean(like, lab, idx_all))
    # a piece that runs on below the horizon in its own colour is land (a snowfield, a pale plain): where
    # it reaches the horizon, the colour 1.5° below is the same (a sky meets land or sea at an edge).
    # (Not at night: there the indoor decision counts a street's lit windows by the dark "sky" around
    # them, and a starless street whose facades this takes back would be read as a room.)
    h = loose.shape[0]
    h2, k = h // 2, max(1, round(1.5 * h / 180))
    if h2 + k < rows and not night:
        touch = lab[h2 - 1]
        same = np.abs(img[h2 - 1] - img[h2 + k]).max(-1) < 0.05
        idx = np.arange(1, n + 1)
        n_touch = np.asarray(ndimage.sum(touch > 0, touch, idx))
        n_same = np.asarray(ndimage.sum(same, touch, idx))
        share[(n_same >= 3) & (n_same >= 0.5 * n_touch)] = 0.0
    if strong is not None and not night:
        blue_share = np.asarray(ndimage.mean(bluish, lab, idx_all))
        reach = max(1, round(2 * h / 512))
        boxes = ndimage.find_objects(lab)
        for i in np.nonzero((share >= 0.5) & (blue_share < 0.5))[0]:  # (a few pieces, not pixels)
            sl = boxes[i]
            r0, r1 = max(sl[0].start - reach, 0), min(sl[0].stop + reach, rows)
            c0, c1 = max(sl[1].start - reach, 0), min(sl[1].stop + reach, lab.shape[1])
            filled = ndimage.binary_fill_holes(lab[r0:r1, c0:c1] == i + 1)
            ring = ndimage.binary_dilation(filled, iterations=reach) & ~filled
            if ring.any() and strong[r0:r1, c0:c1][ring].mean() >= OUTLINE_HARD:
                share[i] = 0.0
    keep = np.r_[False, share >= 0.5]
    out = closed.copy()
    out[:rows] |= keep[lab]
    return out


def sky_gaps(panorama: Panorama, sky: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Sky seen through gaps in what stands against it, which :func:`sky_mask` does not reach: under
    and between tree crowns, between trunks, through holes in a canopy. Call it outdoors only.

    :func:`sky_mask` grows the sky down from the top of the panorama, so sky that a crown closes off
    from above (the pale band under the crowns and between the trunks near the horizon, a hole in the
    foliage) stays out. Two cues bring it back, both as true of a photographed forest as of a rendered
    one:

    - **the open sky's colour at the same elevation**: sky seen through a gap is the same sky, and a
      sky's colour changes with elevation (paler towards the horizon's haze), far less with azimuth.
      Each soft, sky-coloured piece of the upper half that is not yet sky is compared, pixel by pixel,
      with the range (10th to 90th percentile, per channel, widened by 0.04) the open sky's
      daylight-coloured pixels take in that row; rows with little of them (under 8 pixels, or W/128)
      have no reference and match nothing. At least half of the piece must match. Only under a
      daylight sky (at least half of the sky above 30° of those colours): a night sky flows into
      dark facades, and the lit windows it swallows would pass for its colour.
    - **a cover**: sky seen through a gap has the occluder above it (leaves, a crown, a branch, a
      roof), which is not sky-coloured. A stretch of land that only looks like the sky - the hazy foot
      of a far range, snow in shade, a pale plain below the skyline - has the sky, or its own pale
      colour, above it. Over the piece's top edge, the band from 3 pixels (per 512 rows: past the
      blurred rim of the occluder's edge) to 4° above must be less than half sky-coloured (blue,
      bright grey or bright warm, as :func:`sky_mask`'s colour cue).

    A piece that passes both is sky, with its rim (the sky-coloured pixels within 2 pixels per 512
    rows, as :func:`sky_mask` gives its skyline back). Interiors must not call this: the pale walls
    and the ceiling panels between a vault's ribs under a white ceiling pass both tests.

    Args:
        panorama: the colour panorama.
        sky: the sky found so far (:func:`sky_mask`). [H, W] bool
        threshold: likelihood above which a pixel may be sky (as :func:`sky_mask`'s).

    Returns:
        The pixels to add to ``sky``. [H, W] bool
    """
    h, w = sky.shape
    h2 = h // 2
    out = np.zeros_like(sky)
    # the cues need only the upper half (and a row below it for the gradient at the horizon)
    img = panorama.image[: min(h, h2 + 2)].astype(np.float32)
    hue = _hue_likelihood(img)
    cand = (hue * _soft(img, h) > threshold)[:h2] & ~sky[:h2]
    skyhued = hue[:h2] > threshold
    # only under a daylight sky (at least half of the sky above 30° blue, bright grey or bright warm):
    # a night sky flows into dark facades, and the lit windows it swallowed would be the reference
    up = sky[:h2] & (_latitudes(h)[:h2] > np.radians(30.0))[:, None]
    if not cand.any() or not up.any() or skyhued[up].mean() < 0.5:
        return out
    # the reference is the daylight-coloured part of the open sky
    open_ = sky[:h2] & skyhued
    have = np.nonzero(open_.sum(1) >= max(8, w // 128))[0]
    if not len(have):
        return out
    lab, n = ndimage.label(cand)
    idx = np.arange(1, n + 1)
    px = img[:h2]
    # the open sky's colour range row by row (only rows that hold a candidate are measured)
    rows = have[cand[have].any(1)]
    lo = np.full((h2, 3), np.inf, np.float32)
    hi = np.full((h2, 3), -np.inf, np.float32)
    for c in range(3 if len(rows) else 0):  # (a channel at a time: memory [rows, W], not [rows, W, 3])
        vals = np.where(open_[rows], px[rows, :, c], np.nan)
        lo[rows, c], hi[rows, c] = np.nanpercentile(vals, [10, 90], axis=1) + np.array([-0.04, 0.04])[:, None]
    match = ((px >= lo[:, None]) & (px <= hi[:, None])).all(-1)
    share = np.asarray(ndimage.mean(match, lab, idx))
    # the cover: the share of sky-coloured pixels in the band [r1, r1 + span) rows above each pixel,
    # from a running count down each column (rows above the panorama's top count as sky: uncovered)
    r1 = max(2, round(3 * h / 512))
    span = max(3, round(4.0 * h / 180))
    pad = r1 + span
    count = np.concatenate([np.ones((pad, w), np.int32), skyhued.astype(np.int32)]).cumsum(0)
    top = cand & ~np.concatenate([np.zeros((1, w), bool), cand[:-1]])
    ty, tx = np.nonzero(top)
    band = (count[ty + pad - r1, tx] - count[ty, tx]) / span  # (row y + pad of count is row y of the image)
    cover = np.asarray(ndimage.mean(band, lab[ty, tx], idx))
    keep = np.r_[False, (share >= 0.5) & (cover < 0.5)]
    out[:h2] = keep[lab]
    if out.any():
        # the occluder's edge blurs the gap's rim as it blurs a skyline: give the sky-coloured rim back
        reach = max(1, round(2 * h / 512))
        grow = np.zeros_like(sky)
        grow[:h2] = skyhued & ~sky[:h2]
        out |= ndimage.binary_dilation(out, iterations=reach, mask=grow)
    return out


def _enclosed(cand: np.ndarray) -> np.ndarray:
    """Pieces of the upper half that ``cand`` encloses (not joined to the horizon through non-candidate
    pixels) and that span less than a quarter of the columns: blobs in the sky, not a skyline. [H, W] bool"""
    h, w = cand.shape
    h2 = h // 2
    out = np.zeros_like(cand)
    hole = ~connected_to_top(~cand[:h2][::-1])[::-1]
    hole &= ~cand[:h2]
    lab, n = ndimage.label(hole)
    if n:
        span = np.array([sl[1].stop - sl[1].start for sl in ndimage.find_objects(lab)])  # per piece
        small = np.r_[False, span < w // 4]
        out[:h2] = small[lab]
    return out


def _zenith_share(sky: np.ndarray, deg: float = 75.0) -> float:
    h = sky.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    band = lat > np.radians(deg)
    return float(sky[band].mean()) if band.any() else 0.0


def sky_mask(panorama: Panorama, far: np.ndarray | None = None, threshold: float = 0.5) -> np.ndarray:
    """Sky pixels: sky-coloured and smooth (or, with ``far``, farthest in view), above the horizon,
    in one piece with the top. When no blue, grey, white or warm sky covers the zenith, dark
    pixels count too (a night or space sky). Whether it is a ceiling is :func:`is_indoor`'s call.

    Args:
        panorama: the colour panorama.
        far: optional per-pixel "far" likelihood in [0, 1] from a depth estimate. [H, W]
        threshold: likelihood above which a pixel may be sky.

    Returns:
        [H, W] bool.
    """
    h, w = panorama.height, panorama.width
    img = panorama.image.astype(np.float32)
    # the sky lies above the horizon: every cue is computed on the upper half (and a few rows more,
    # for the filters that reach across it)
    rows = min(h, h // 2 + 2 * _star_size(h) + 4)
    _, clean, _ = _stars(img[:rows], h)
    band = flat_rows(img)

    def grow(dark: bool) -> np.ndarray:
        hue = np.zeros((h, w), np.float32)
        like = np.zeros((h, w), np.float32)
        hue[:rows] = _hue_likelihood(clean, dark)
        # in the dark, edges are measured on the square root of the colour (a little smoothed against
        # noise): a black ridge under a dark-blue night sky is as much an edge as a grey one under a blue sky
        seen = np.sqrt(ndimage.gaussian_filter(clean, (0.7, 0.7, 0))) if dark else clean
        soft, weak = _soft_and_weak(seen, h)
        like[:rows] = hue[:rows] * soft
        if far is not None:
            # far and sky-coloured reinforce each other; far alone is not sky (a distant wall)
            like = np.clip(0.6 * like + 0.6 * np.asarray(far, np.float32) * (like > 0.2), 0, 1)
        # faint stretches of hard edges close the skylines; what only they joined to the sky stays sky
        # where it has the sky's colour (snow and rock as bright as a blue sky; dark facades under a
        # night sky)
        cut = np.zeros((h, w), bool)
        cut[:rows] = weak
        strong = np.zeros((h, w), bool)
        strong[:rows] = soft <= 0.5  # (hard >= its threshold)
        return _grow(like, hue, band, threshold, columns=dark, cut=cut, img=clean, strong=strong)

    sky = grow(False)
    zs = _zenith_share(sky)
    med = float(np.median(_lum(clean[sky[:rows]]))) if sky.any() else math.inf
    dim = med < 0.3
    # a sky a little brighter (0.3-0.4: a night photographed at its own exposure, a light-polluted
    # one) may have left out a glow whose colour is no daylight colour (a town's warm grey at 0.43 is
    # neither a bright grey nor blue); the dark pass may add it, but only something at least as
    # bright as the sky found: a dim grey ceiling's dark pass adds the dim walls below it instead
    glow = 0.3 <= med < 0.4 and zs >= 0.5
    if zs < 0.5 or dim or glow:
        # no daylight sky overhead, or a dim one (dusk, moonlit clouds): a night or space sky, a sunset,
        # or a ceiling (is_indoor tells them apart)
        dark = grow(True)
        zd = _zenith_share(dark)
        better = zd > zs or (zd == zs and dark.sum() > sky.sum())
        if better and glow:
            added = (dark & ~sky)[:rows]
            better = bool(added.any()) and float(np.median(_lum(clean[added]))) >= med
        if better:
            sky = dark
    return sky


def _latitudes(h: int) -> np.ndarray:
    return np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h


def scene_cues(panorama: Panorama, sky: np.ndarray) -> dict:
    """What tells a sky from a ceiling, measured on ``sky`` (see :func:`is_indoor`).

    Returns:
        ``sky_above_30deg``, ``sky_above_75deg``: cos-weighted sky share above those latitudes;
        ``daylight``: share of that sky (above 30°) blue, bright grey or bright warm;
        ``open_horizon``: share of columns whose sky reaches down to a skyline 0-10° above the horizon;
        ``night_blue``: the sky's mean colour is a clear blue (a night or dusk sky; lamp-lit ceilings are warm);
        ``stars``: star pixels in the sky; ``lamps``: bright blobs wider than a star in a dark sky;
        ``blue``: share of the sky above 30° a clear blue; ``warm``: share of it of a warm tint
        (cream, beige, orange); ``ceiling_ring``, ``through_horizon``: see :func:`is_indoor`.
    """
    h, w = sky.shape
    lat = _latitudes(h)
    img = panorama.image.astype(np.float32)
    rows = min(h, h // 2 + 2 * _star_size(h) + 4)
    star, clean, base = _stars(img[:rows], h)
    sky_u = sky[:rows]

    def frac(deg: float) -> float:
        band = lat > np.radians(deg)
        wts = np.cos(lat[band])[:, None] * np.ones((1, w))
        return float(np.average(sky[band], weights=wts))

    # the skyline: where the sky that reaches down from the top ends in each column; the sky ends
    # below the horizon only where the upper half's limit cut it (no skyline seen there)
    first = np.where((~sky).any(0), np.argmax(~sky, axis=0), h)
    e_b = lat[np.minimum(first, h - 1)]
    n_sky = int(sky.sum())
    med = float(np.median(_lum(clean[sky_u]))) if n_sky else 0.0
    # where the sky runs down to the horizon, a skyline at or just below it shows as lit land in
    # the 3° below the horizon (a dark room's walls carry on dark)
    k = max(1, round(3.0 * h / 180))
    lit = _lum(img[h // 2 : h // 2 + k]).mean(0) > max(DARK, 2 * med)
    skyline = (first > 0) & (e_b <= np.radians(10.0)) & ((e_b > 0) | lit)
    open_ = float(np.mean(skyline))
    s30 = sky_u & (lat[:rows] > np.radians(30))[:, None]
    n30 = int(s30.sum())
    col = clean[s30].mean(0) if n30 else np.zeros(3, np.float32)
    day = float(_hue_likelihood(clean[s30][None])[0].astype(bool).mean()) if n30 else 0.0
    # a clear blue: blue at least 1.8x red. Night and dusk skies are 2.5-3.8x in the labelled set
    # (benchmarks/sky_labelled.py); a black ceiling with the cool cast of daylight-balanced lamps (a
    # photo studio) is 1.4x, and at 1.3x it passed for a night sky
    night_blue = bool(col[2] > 1.8 * col[0] and col[2] > 1.1 * col[1] and col[2] > 0.02)
    # a daylight sky that is not blue (overcast, white, warm) may be a lit ceiling (and the pale walls
    # it flows into); two signs of one, both from where the sky ends:
    blue = float(_bluish(clean[s30]).mean()) if n30 else 0.0
    # a warm tint (cream, beige, orange: red >= green >= blue, saturation 0.2 or more) overhead: no
    # daylight sky (blue, or grey under cloud) has it; a ceiling lit by lamps or painted cream does,
    # and so do a sunset's glow and a sky of smoke or dust, which must show a sign of a sky
    px = clean[s30]
    warm = (
        float(((px[:, 0] >= px[:, 1]) & (px[:, 1] >= px[:, 2]) & (px.max(1) - px.min(1) >= 0.2)).mean()) if n30 else 0.0
    )
    # - a ring: the sky ends well above the horizon all around (its lowest tenth at 12° or higher, and
    #   nowhere under 10° but in 0.5 % of the columns: a street's ends run down to the horizon) along a
    #   smooth line (a ceiling meets the walls 15-45° up along straight edges; a skyline that high is
    #   trees, rock or roofs, jagged from column to column)
    jump = np.abs(np.diff(np.r_[first, first[:1]]))
    ceiling_ring = bool(
        np.percentile(e_b, 10) >= np.radians(12.0)
        and np.percentile(e_b, 0.5) >= np.radians(10.0)
        and np.mean(jump <= 1) >= 0.93
        and frac(75) >= 0.5
    )
    # - the sky carries on below the horizon: where it reaches the horizon, one colour runs with no
    #   edge from 9-18° up (surely sky, if it is one) through the 3° above the horizon to the band 3-6°
    #   below it (a wall does; land or sea meets the sky at an edge, at most a degree or two below the
    #   horizon when the camera stands high)
    k2 = max(1, round(3.0 * h / 180))
    high = img[h // 2 - 6 * k2 : h // 2 - 3 * k2].mean(0)
    above = img[h // 2 - k2 : h // 2].mean(0)
    below = img[h // 2 + k2 : h // 2 + 2 * k2].mean(0)
    reach = sky[h // 2 - 1] & sky[h // 2 - 6 * k2]
    same = (np.abs(above - below).max(-1) < 0.04) & (np.abs(high - above).max(-1) < 0.06)
    through = reach & same & (_lum(below) > 0.4)
    n_star = int((star & sky_u).sum())
    # lamps: bright blobs wider than a star (they survive the opening) in a dark sky, at least 10°
    # up, their surroundings (a 2-pixel ring) mostly sky
    n_lamp = 0
    if n_sky and med < DARK:
        bright = (base > max(0.5, 4 * med)) & (lat[:rows] > np.radians(10))[:, None]
        lab, n = ndimage.label(bright)
        if n:
            ring = ndimage.grey_dilation(lab, size=5, mode="wrap") * ~bright
            share = ndimage.mean(sky_u, ring, np.arange(1, n + 1))
            n_lamp = int((np.nan_to_num(np.asarray(share)) >= 0.6).sum())
    return {
        "sky_above_30deg": round(frac(30), 4),
        "sky_above_75deg": round(frac(75), 4),
        "daylight": round(day, 3),
        "open_horizon": round(open_, 3),
        "night_blue": night_blue,
        "stars": n_star,
        "lamps": n_lamp,
        "blue": round(blue, 3),
        "warm": round(warm, 3),
        "ceiling_ring": ceiling_ring,
        "through_horizon": round(float(np.mean(through)), 3),
        "_star_density": n_star / max(n_sky, 1),
    }


def zenith_seen(seen: np.ndarray | None) -> bool:
    """False where none of the pixels above 75° latitude was seen (``seen``: [H, W] bool, None = all
    seen): the top of the sphere is a made-up backdrop (a photo world, a partial panorama)."""
    if seen is None:
        return True
    cap = max(1, int(round(seen.shape[0] * 15 / 180)))
    return bool(seen[:cap].any())


def decide_scene(
    panorama: Panorama, sky: np.ndarray, seen: np.ndarray | None = None, scene: str = "auto"
) -> tuple[bool, dict]:
    """Indoor or outdoor, as every depth backend decides it: :func:`is_indoor` on the sky found,
    told whether the zenith was seen (``seen``: the pixels seen, [H, W] bool, None = all), unless
    ``scene`` ("indoor" or "outdoor") overrides it. The facts record ``zenith_seen: false`` where
    it was not, and a decision made on what was not seen (``scene_note``) is logged as a warning
    naming the override; an override drops the note.

    Returns:
        A tuple: **indoor** and the facts it was decided from (for the manifest).
    """
    top_seen = zenith_seen(seen)
    indoor, facts = is_indoor(panorama, sky, top_seen)
    if not top_seen:
        facts["zenith_seen"] = False
    if scene != "auto":
        facts.pop("scene_note", None)
        return scene == "indoor", facts
    if "scene_note" in facts:
        log.warning(facts["scene_note"])
    return indoor, facts


def seen_sky(
    panorama: Panorama,
    sky: np.ndarray,
    seen: np.ndarray | None,
    share: float = 0.5,
    piece_blue: float = 0.25,
    piece_dark: float = 0.5,
    piece_edges: float = 0.06,
) -> np.ndarray:
    """The sky, where only part of the sphere was seen, kept in the seen pixels only where the seen
    pixels themselves show it.

    The made-up backdrop of a photo world or a partial panorama carries each edge's colours outwards
    with no edge, so the sky grown from the top (:func:`sky_mask`) flowed through it into whatever
    touched the image's top edge: a canyon's pale rim, a grey facade. The seen sky is cut into pieces
    (8-connected within the seen pixels, across longitude 180° too) and each is judged by what the
    seen pixels show:

    - Where most of the seen sky is a clear blue (:func:`blue_sky_weight` over 0.5 for at least
      ``share`` of it, cos-latitude weighted), a piece stays sky only if it holds some of that blue.
    - Where one piece is a bright clear daylight sky (at least half of it that blue, mean luminance
      0.5 or more, 1 % of the seen pixels or more), a piece beside it stays sky only if at least
      ``piece_blue`` of it is that blue and it is not darker than ``piece_dark`` times that sky: a
      cream facade with a few bluish pixels, a shaded blue-grey wall under a bright blue sky.
    - With no daylight piece but sunlit vegetation below the horizon (:func:`_sunlit_green` at
      least half the seen ground), a dim (mean luminance under ``DIM_SKY``) blue-tinted piece is no
      sky: a cliff or a facade in shade, lit blue by the sky.
    - Any other piece with hard edges inside it (more than ``piece_edges`` of it) is no sky: a
      shaded facade and its windows filling the photo's top, which the made-up zenith above it had
      turned into a dusk sky. Its smooth parts, and a near-white sky joined to it with no edge
      between, are taken out first and stay sky (:func:`_smooth_parts`).

    The backdrop's own sky is kept. Where the seen sky is grey or white and no piece is a bright blue,
    nothing in the colour tells a sky from a pale wall: only the hard edges inside a piece judge it.

    Args:
        sky: [H, W] bool. seen: [H, W] bool, None = every pixel seen (the mask is returned as it is).

    Returns:
        [H, W] bool
    """
    if seen is None:
        return sky
    s = sky & seen
    if not s.any():
        return sky
    h = sky.shape[0]
    img = panorama.image
    wt = np.broadcast_to(np.cos(_latitudes(h))[:, None], sky.shape)
    blue = np.zeros_like(s)
    blue[s] = blue_sky_weight(img[s]) > 0.5  # (a colour test: only the seen sky's pixels)
    lab, n = ndimage.label(s, np.ones((3, 3), bool))
    # pieces that meet across longitude 180° (the first and last columns, 8-connected) are one piece
    left, right = lab[:, 0], lab[:, -1]
    pairs = [
        np.stack([left[a], right[b]], 1)
        for a, b in ((slice(None), slice(None)), (slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))
    ]
    pairs = np.concatenate(pairs, 0)
    pairs = pairs[(pairs > 0).all(1)]
    group = np.arange(n + 1)
    if len(pairs):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n + 1, n + 1))
        group = connected_components(graph, directed=False)[1]
    piece = group[lab]  # [H, W]; group[0] is the background (not seen sky)
    m = group.max() + 1
    area = np.bincount(piece[s], wt[s], m)
    blue_area = np.bincount(piece[blue], wt[blue], m)
    lum = np.bincount(piece[s], (wt * _lum(img))[s], m) / np.maximum(area, 1e-12)
    keep = area > 0
    if float(blue_area.sum()) >= share * float(area.sum()):
        keep &= blue_area > 0
    blue_share = blue_area / np.maximum(area, 1e-12)
    daylight = keep & (blue_share >= 0.5) & (lum >= 0.5) & (area >= 0.01 * float(wt[seen].sum()))
    if daylight.any():
        keep &= (blue_share >= piece_blue) & (lum >= piece_dark * float(lum[daylight].max()))
    elif _sunlit_green(img, seen & ~sky, wt) >= 0.5:
        # Sunlit vegetation below the horizon is daytime, and a daytime sky is bright: a dim
        # blue-tinted piece over it is a wall in shade lit by the blue sky (a cliff, a facade),
        # which the made-up dusk-blue zenith above had turned into a night sky. (A grey storm sky
        # over sunlit grass has no such tint and is left alone.)
        tint = np.bincount(piece[s], (wt * (img[..., 2] - img[..., 0]))[s], m) / np.maximum(area, 1e-12)
        keep &= ~((lum < DIM_SKY) & (tint >= 0.1))
    # A sky holds no hard edges inside it (clouds are soft; stars are taken out first); a wall's
    # windows and joints do. Measured as the dark pass of sky_mask measures them (on the square root
    # of the colour, so that a dark window in a dark blue-grey facade counts), on each piece less a
    # rim of 2 pixels at 512 rows (its own outline and what it borders are no evidence). A daylight
    # piece is left alone: the made-up backdrop's cross-fade may have joined a true sky to a facade,
    # and the colour rules above judge those.
    rows = np.flatnonzero(s.any(1))
    # (with a margin as wide as the rim below: the gradient needs rows on either side, and a seen
    # sky one row high has them)
    rim = 2 * max(1, h // 512)
    r0, r1 = max(0, int(rows[0]) - rim), min(h, int(rows[-1]) + 1 + rim)
    _, clean, _ = _stars(img[r0:r1].astype(np.float32), h)
    edges, thr = _edges(np.sqrt(np.clip(clean, 0.0, 1.0)), h)
    hard = np.pad(edges >= thr, ((r0, h - r1), (0, 0)))  # [H, W]
    inner = np.zeros_like(s)
    inner[r0:r1] = ndimage.binary_erosion(s[r0:r1], np.ones((3, 3), bool), iterations=rim)
    inner_area = np.bincount(piece[inner], wt[inner], m)
    edged = inner & hard
    edge_share = np.bincount(piece[edged], wt[edged], m) / np.maximum(inner_area, 1e-12)
    edged_piece = ~daylight & (edge_share > piece_edges) & keep
    keep &= ~edged_piece
    keep[group[0]] = False
    out = (sky & ~seen) | keep[piece]
    if edged_piece.any():
        # near-white and not warm: a clipped or hazy sky, not a sunlit cream wall
        white = (_lum(img) >= WHITE_SKY) & (img[..., 2] >= img[..., 0])
        region = s & edged_piece[piece]
        out |= _smooth_parts(region, np.where(region, piece, 0), area, hard, white, wt, h, rim)
    return out


def _sunlit_green(img: np.ndarray, below: np.ndarray, wt: np.ndarray) -> float:
    """Share (cos-latitude weighted) of the pixels of ``below`` under the horizon that are sunlit
    vegetation: green leading red and blue, saturated (0.15) and not dark (luminance 0.15). Night
    scenes, lit by the moon or by lamps, show almost none (0-4 % on the procedural night photos;
    sunlit grass 90-98 %). img: [H, W, 3]; below, wt: [H, W]. float"""
    h = img.shape[0]
    under = below.copy()
    under[: h // 2] = False
    total = float(wt[under].sum())
    if total <= 0:
        return 0.0
    px = img[under]
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    sat = px.max(1) - px.min(1)
    green = (g > r) & (g > b) & (sat > 0.15) & (_lum(px) > 0.15)
    return float(wt[under][green].sum()) / total


def _smooth_parts(
    region: np.ndarray,
    piece: np.ndarray,
    piece_area: np.ndarray,
    hard: np.ndarray,
    white: np.ndarray,
    wt: np.ndarray,
    h: int,
    rim: int,
) -> np.ndarray:
    """The parts of ``region`` (sky pieces with hard edges inside) that are a sky, grown back over the
    edge pixels around them (``rim`` pixels) within ``region``. ``region`` is cut at the hard edges;
    of the parts that hold at least 2 % of their piece (not a window's flat inside), one that encloses
    fewer than three holes is sky, and one that encloses more (a facade's wall round its windows)
    keeps only the near-white (``white``) pixels farther than ``HOLE_REACH_DEG`` from every hole and
    what lies nearer to them than to a hole.

    region, hard, white, wt: [H, W]; piece: [H, W] int, the piece of :func:`seen_sky` each pixel of
    ``region`` belongs to (0 elsewhere), and ``piece_area`` [pieces] their areas. [H, W] bool"""
    out = np.zeros_like(region)
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    if not len(rows):
        return out
    # everything below stays within the region (labels, distances, the dilation's mask): its box is
    # enough, and a large panorama's full frame is not paid for
    frame = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    region, piece, hard, white, wt = region[frame], piece[frame], hard[frame], white[frame], wt[frame]
    four = ndimage.generate_binary_structure(2, 1)
    parts, n = ndimage.label(region & ~hard, four)
    if not n:
        return out
    area = np.bincount(parts.ravel(), wt.ravel(), n + 1)
    owner = np.zeros(n + 1, np.int64)  # the piece each part lies in
    owner[parts[parts > 0]] = piece[parts > 0]
    total = piece_area[owner]
    ok = area >= 0.02 * total
    ok[0] = False
    boxes = ndimage.find_objects(parts)
    kept = np.zeros_like(region)
    reach = HOLE_REACH_DEG * h / 180.0
    for i in np.flatnonzero(ok):  # (a loop over the few large parts, not over pixels)
        box = boxes[i - 1]
        sub = parts[box] == i
        hole = ndimage.binary_fill_holes(sub) & ~sub
        if ndimage.label(hole)[1] < 3:
            kept[box] |= sub
            continue
        # A facade's wall and a sky with no hard edge between them (a clipped white sky beside a
        # pale wall in soft light) are one part. Its near-white pixels away from every window are
        # the sky; each other pixel goes with the nearer of that sky and the windows. A shaded
        # facade has no such pixels and goes whole.
        to_hole = ndimage.distance_transform_edt(~hole)
        core, m = ndimage.label(sub & (to_hole > reach) & white[box], four)
        if not m:
            continue
        big = np.bincount(core.ravel(), wt[box].ravel(), m + 1) >= 0.02 * total[i]
        big[0] = False
        if big.any():
            kept[box] |= sub & (ndimage.distance_transform_edt(~big[core]) <= to_hole)
    out[frame] = ndimage.binary_dilation(kept, np.ones((3, 3), bool), iterations=rim, mask=region)
    return out


def is_indoor(panorama: Panorama, sky: np.ndarray | None = None, zenith_seen: bool = True) -> tuple[bool, dict]:
    """Indoors when the sky does not cover the zenith, or when what covers it may be a ceiling and
    nothing says it is a sky.

    - Closed: almost nothing above 30° latitude is sky and the zenith is closed (high walls - a
      canyon, a cliff, a street of towers - hide most of the sky above 30° too, but outdoors the
      zenith itself is still open).
    - A daylight sky (mostly blue, bright grey or bright warm) that covers the zenith, and is not mostly
      of a warm tint: outdoors, unless it is not blue and closes in a smooth ring at least 10° up all
      around or carries on below the horizon with no edge (a white ceiling and the pale walls it flows
      into).
    - Anything else that covers it (black, dark, a sunset's orange, a lamp-lit or cream ceiling, which
      is as bright as an overcast sky but warm: red >= green >= blue, saturation 0.2 or more) is a sky
      only with one of: a skyline near the horizon (0-10° up) in at least 30 % of the columns
      (a black sky above lit ground); a clear blue tint (night and dusk skies; lamps light
      ceilings warm); stars (point-like specks, not where lamps hang: bright blobs wider than a
      star); dozens of such blobs (lit windows of a night street).

    ``zenith_seen`` False: the sky's top was not seen (a photo world or a partial panorama: what lies
    above is a made-up backdrop, smooth and pale by construction). A grey, white or pale warm one is
    then a ceiling unless the horizon is open (a skyline 0-10° up in at least 30 % of the columns):
    the ring a ceiling closes above its walls, which tells it from an overcast sky, is what was not
    seen, and the backdrop carried a room's seen ceiling up to a blurred pale zenith that read as an
    overcast sky (a kitchen photographed from 40° below the zenith down, the panorama's rest made up).

    Returns:
        A tuple: **indoor** and the facts it was decided from (for the manifest).
    """
    sky = sky_mask(panorama) if sky is None else sky
    c = scene_cues(panorama, sky)
    density = c.pop("_star_density")
    if c["sky_above_30deg"] < 0.15 and c["sky_above_75deg"] < 0.25:
        return True, c
    if c["daylight"] >= 0.5 and c["warm"] < 0.5:
        # blue is sky; a grey, white or pale warm one is a ceiling when it closes in a smooth ring well
        # above the horizon or carries on below the horizon as a wall (in 5 % of the columns or more)
        pale = c["blue"] < 0.5 and (c["ceiling_ring"] or c["through_horizon"] >= 0.05)
        if not zenith_seen and not pale and c["blue"] < 0.5 and c["open_horizon"] < 0.3:
            # the one decision made on what was not seen: say so, with the override
            c["scene_note"] = (
                "the zenith was not seen and the sky seen is pale with no open horizon: decided indoor "
                "(a ceiling); if this is outdoors (an overcast street or forest), use --set depth.scene=outdoor"
            )
            pale = True
        return pale, c
    # (a daylight-bright sky of a warm tint - cream, beige, orange - is no daylight sky: it needs a sign)
    starry = c["stars"] >= 20 and density >= 2e-4 and c["lamps"] == 0
    # dozens of lights in the dark: lit windows of a night street, into whose dark facades the dark
    # sky has flowed (a room has a few lamps)
    street = c["lamps"] >= STREET_LIGHTS
    return not (c["open_horizon"] >= 0.3 or c["night_blue"] or starry or street), c


__all__ = [
    "blue_sky_weight",
    "connected_to_top",
    "decide_scene",
    "flat_rows",
    "is_indoor",
    "scene_cues",
    "seen_sky",
    "sky_colour",
    "sky_gaps",
    "sky_mask",
    "zenith_seen",
]
