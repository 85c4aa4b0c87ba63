"""The weight-free prior: scene decision, sky, accuracy against procedural worlds of exact depth."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from worldgen.depth.layout import layout_depth
from worldgen.depth.prior import PriorConfig, prior_depth
from worldgen.errors import InputError


@functools.cache
def _world(prompt: str, width: int = 256, seed: int = 0):
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt(prompt, seed)
    return synthesize(spec, 1.6, ProceduralConfig(width=width, antialias=False, previews=False))


def _box_rays(h: int, w: int, eye: float, ceil: float, walls: np.ndarray, theta: float = 0.0):
    """Rays of an equirect from inside a box room: latitudes [H], longitudes [W], the horizontal
    distance to the walls per column [W] (walls +u, -u, +v, -v in metres, the box turned by
    ``theta``, as ``_box_distance``), and the ray distances to the floor, the ceiling (``ceil``
    above the eye) and the walls. [H, W] each"""
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    lon = 2 * np.pi * (np.arange(w) + 0.5) / w - np.pi
    dx, dz = np.sin(lon), -np.cos(lon)
    u = dx * np.cos(theta) + dz * np.sin(theta)
    v = -dx * np.sin(theta) + dz * np.cos(theta)
    with np.errstate(divide="ignore"):
        tu = np.where(u > 0, walls[0] / u, walls[1] / -u)
        tv = np.where(v > 0, walls[2] / v, walls[3] / -v)
    d = np.minimum(tu, tv)
    up = np.sin(lat)[:, None]
    with np.errstate(divide="ignore"):
        rf = np.where(up < 0, eye / -up, np.inf)
        rc = np.where(up > 0, ceil / up, np.inf)
    return lat, lon, d, rf, rc, d[None] / np.cos(lat)[:, None]


def _absrel(pred, gt):
    h = gt.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    w = np.broadcast_to(np.cos(lat)[:, None], gt.shape)
    m = np.isfinite(gt) & np.isfinite(pred)
    return float(np.average(np.abs(pred[m] - gt[m]) / gt[m], weights=w[m]))


def test_interior_is_a_room_without_sky():
    pano, gt, _ = _world("a cozy living room interior")
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "indoor" and not depth.sky.any() and np.isfinite(depth.depth).all()
    assert len(facts["room_walls_m"]) == 4 and facts["ceiling_above_eye_m"] > 0.3
    err = _absrel(depth.depth, gt.depth)
    assert err < 0.35 and err < _absrel(layout_depth(pano, 1.6).depth, gt.depth) / 5
    # the floor under the camera is at the eye height
    assert depth.depth[-1].mean() == pytest.approx(1.6, rel=0.01)


def test_outdoor_ground_folds_and_sky():
    pano, gt, _ = _world("a meadow")
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "outdoor" and facts["scene_from"] == "auto"
    gsky = gt.sky
    iou = (depth.sky & gsky).sum() / (depth.sky | gsky).sum()
    assert iou > 0.9 and np.isposinf(depth.depth[depth.sky]).all()
    assert _absrel(depth.depth, gt.depth) < 0.15


def test_override_determinism_and_errors():
    pano, _, _ = _world("a meadow")
    d1, _ = prior_depth(pano, 1.6)
    d2, _ = prior_depth(pano, 1.6)
    assert np.array_equal(d1.depth, d2.depth) and np.array_equal(d1.sky, d2.sky)
    forced, facts = prior_depth(pano, 1.6, PriorConfig(scene="indoor"))
    assert facts["scene"] == "indoor" and facts["scene_from"] == "indoor" and not forced.sky.any()
    with pytest.raises(InputError, match="scene"):
        prior_depth(pano, 1.6, PriorConfig(scene="cave"))


def test_prior_is_the_default_without_depth_or_model(tmp_path):
    from worldgen.cli.main import main
    from worldgen.io import encode_png

    pano, _, _ = _world("a cozy living room interior", 128)
    p = tmp_path / "room.png"
    p.write_bytes(encode_png(pano.to_uint8()))
    out = tmp_path / "run"
    assert main(["generate", "--panorama", str(p), "--until", "depth", "-q", "-o", str(out)]) == 0
    entry = json.loads((out / "manifest.json").read_text())["stages"]["depth"]
    assert entry["backend"] == "prior" and entry["report"]["scene"] == "indoor"
    assert (
        main(
            ["generate", "--panorama", str(p), "--until", "depth", "-q", "-o", str(out), "--set", "depth.scene=outdoor"]
        )
        == 0
    )
    entry = json.loads((out / "manifest.json").read_text())["stages"]["depth"]
    assert entry["report"]["scene"] == "outdoor" and entry["report"]["scene_from"] == "outdoor"


def _scores(depth, gt):
    """AbsRel and δ1 (cos-latitude weighted, true non-sky pixels) and sky IoU, as benchmarks/bench_depth.py."""
    h = gt.depth.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    w = np.broadcast_to(np.cos(lat)[:, None], gt.depth.shape)
    m = np.isfinite(gt.depth) & np.isfinite(depth.depth)
    p, g = depth.depth[m], gt.depth[m]
    union = (depth.sky | gt.sky).sum()
    return (
        float(np.average(np.abs(p - g) / g, weights=w[m])),
        float(np.average(np.maximum(p / g, g / p) < 1.25, weights=w[m])),
        float((depth.sky & gt.sky).sum() / union) if union else 1.0,
    )


@pytest.mark.parametrize("prompt", ["a city", "a canyon"])
def test_walls_stand_at_their_foot(prompt):
    # a facade's foot lies beyond a sidewalk, a canyon wall's beyond a strip of shaded sand: neither
    # matches the ground colour learnt under the camera, and the folds used to stand at the kerb
    # (city: AbsRel 0.27, δ1 0.46; canyon 0.25, 0.63 at this size)
    pano, gt, _ = _world(prompt, 512)
    depth, facts = prior_depth(pano, 1.6)
    absrel, d1, iou = _scores(depth, gt)
    assert facts["scene"] == "outdoor"
    assert absrel <= 0.2 and d1 >= 0.75 and iou >= 0.85, (absrel, d1, iou)


def test_high_cliffs_are_outdoors():
    # cliffs hide all but a little sky above 30°, but the zenith is open: not a room
    pano, gt, _ = _world("a mountains", 256, 1)
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "outdoor" and facts["sky_above_75deg"] >= 0.25
    assert _scores(depth, gt)[2] > 0.5


def test_grey_facade_against_blue_sky_of_the_same_brightness():
    # no brightness edge at the roofline, only a colour edge: the facade is not sky
    from worldgen.depth.sky import sky_mask
    from worldgen.types import Panorama

    h, w = 128, 256
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.4, 0.6, 1.0)  # blue sky, luminance 0.586
    lum = 0.2126 * 0.4 + 0.7152 * 0.6 + 0.0722 * 1.0
    img[30:, 100:150] = lum  # a grey facade of the same luminance, from 35° up to the ground
    img[h // 2 :] = (0.25, 0.22, 0.18)  # ground
    sky = sky_mask(Panorama(img))
    assert not sky[30:64, 104:146].any()
    assert sky[:60, 160:250].all() and sky[:25].all()


def test_grey_facade_down_to_a_grey_street():
    # a grey facade with window columns stands from 30° above to 10° below the horizon on a noisy grey
    # street: its lower part is as ground-like as the asphalt by colour, but it carries the colours
    # of the facade above and vertical edges, so it is facade: the foot is 10° down, 1.6 / tan 10° m
    h, w = 128, 256
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.4, 0.6, 1.0)
    img[71:] = np.clip(0.45 + rng.normal(0, 0.12, (h - 71, w)), 0, 1)[..., None]
    img[43:71] = 0.5
    for x in range(0, w, 8):
        img[46:69, x : x + 3] = 0.15
    from worldgen.types import Panorama

    foot = 1.6 / np.tan(np.radians(10.0))
    depth, _ = prior_depth(Panorama(img), 1.6)
    assert np.median(depth.depth[60]) == pytest.approx(foot, rel=0.15)
    # without the vertical-edge cue the facade's foot is lost at the horizon
    flat, _ = prior_depth(Panorama(img), 1.6, PriorConfig(vertical_share=0))
    assert np.median(flat.depth[60]) > 2 * foot


def _d1(pred, gt):
    h = gt.shape[0]
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    w = np.broadcast_to(np.cos(lat)[:, None], gt.shape)
    m = np.isfinite(gt)
    ok = np.maximum(pred[m] / gt[m], gt[m] / pred[m]) < 1.25
    return float(np.average(ok, weights=w[m]))


@pytest.mark.parametrize("seed", [1, 2])
def test_room_walls_at_their_distance(seed):
    # seeds where the per-column colour-model contacts put the walls 1.4-2.4x too far (wooden walls
    # like the wooden floor, a checkered rug): the box fitted to the ceiling-wall and floor-wall lines
    pano, gt, _ = _world("a cozy living room interior", 512, seed)
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "indoor" and not depth.sky.any()
    assert _absrel(depth.depth, gt.depth) <= 0.25 and _d1(depth.depth, gt.depth) >= 0.7


def test_plain_box_room_is_measured():
    # a 6 x 4 m room turned by 20°, 2.8 m high, camera 1.6 m above the floor off-centre: flat
    # colours for floor, walls and ceiling (and a rug, a smaller box on the floor)
    from worldgen.types import Panorama

    h, w, eye, ceil = 128, 256, 1.6, 1.2
    th = np.radians(20.0)
    lat, lon, d, rf, rc, rw = _box_rays(h, w, eye, ceil, np.array([2.5, 3.5, 1.5, 2.5]), th)
    dx, dz = np.sin(lon), -np.cos(lon)
    gt = np.minimum(np.minimum(rf, rc), rw)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.75, 0.72, 0.68)  # walls
    img[rc <= np.minimum(rf, rw)] = (0.9, 0.9, 0.92)  # ceiling
    floor = rf <= np.minimum(rc, rw)
    img[floor] = (0.45, 0.3, 0.2)
    # a rug: floor points within a 2 x 1.4 m rectangle aligned with the room
    rg = np.where(floor, rf, 0.0) * np.cos(lat)[:, None]
    px, pz = rg * dx, rg * dz
    ru, rv = px * np.cos(th) + pz * np.sin(th), -px * np.sin(th) + pz * np.cos(th)
    img[floor & (np.abs(ru) < 1.0) & (np.abs(rv) < 0.7)] = (0.7, 0.1, 0.1)
    depth, facts = prior_depth(Panorama(img), eye, PriorConfig(scene="indoor"))
    assert _absrel(depth.depth, gt) < 0.08
    assert facts["ceiling_above_eye_m"] == pytest.approx(ceil, rel=0.1)


@pytest.mark.parametrize("seed", [2, 3])
def test_canyon_walls_recede_as_they_rise(seed):
    # canyon walls are terrain: a high skyline all around, bare rock (no foliage, few vertical edges);
    # as a vertical fold at the foot they stood far too near higher up (δ1 0.67 and 0.68 at this size)
    pano, gt, _ = _world("a canyon", 512, seed)
    depth, facts = prior_depth(pano, 1.6)
    absrel, d1, iou = _scores(depth, gt)
    assert facts["scene"] == "outdoor"
    assert absrel <= 0.2 and d1 >= 0.72 and iou >= 0.95, (absrel, d1, iou)


def test_slope_is_a_plane_from_contact_to_skyline():
    # a plane through a horizontal line 20 m ahead at the ground, rising at 30°: 1 / horizontal
    # distance is linear in tan(elevation), so two points fix it and every row between comes back
    from worldgen.depth.prior import _latitudes, _slope

    h, eye, d0, alpha = 512, 1.6, 20.0, np.radians(30.0)
    lat = _latitudes(h)
    x = (eye + d0 * np.tan(alpha)) / (np.tan(alpha) - np.tan(lat))  # horizontal distance on the plane
    lat_c = np.array([-np.arctan(eye / d0)])
    e_s = np.array([np.radians(25.0)])
    far = float((eye + d0 * np.tan(alpha)) / (np.tan(alpha) - np.tan(e_s[0])))
    r = _slope(np.array([d0]), lat_c, e_s, far, lat)[:, 0]
    between = (lat >= lat_c[0]) & (lat <= e_s[0])
    assert np.allclose(r[between], (x / np.cos(lat))[between], rtol=1e-6)


@pytest.mark.parametrize("seed", [1, 3])
def test_steep_rock_walls_are_terrain_with_a_far_foot(seed):
    # a wall of rock all around, 50-100 m away at its foot and rising to 55-80°: its gullies read as
    # vertical edges, so it was taken for folds at a foot capped at 50 m (AbsRel 0.35 and 0.41 at this
    # size); a skyline above 50° all around is terrain, its foot lies where the ground plane puts it
    # (up to 92 m) and its crest where a 75° face reaches the skyline
    pano, gt, _ = _world("a mountains", 256, seed)
    depth, _ = prior_depth(pano, 1.6)
    old, _ = prior_depth(pano, 1.6, PriorConfig(terrain_steep_deg=90.0, terrain_slope_deg=0.0))
    new_err, old_err = _absrel(depth.depth, gt.depth), _absrel(old.depth, gt.depth)
    assert new_err < 0.35 and new_err < old_err - 0.03, (new_err, old_err)


def test_a_skyline_above_50_degrees_all_around_is_terrain_whatever_its_vertical_edges():
    from worldgen.depth.prior import _terrain_columns

    h, w = 128, 256
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    img = np.zeros((h, w, 3), np.float32) + np.array([0.45, 0.42, 0.4], np.float32)  # grey rock
    img[:, (np.arange(w) // 8) % 2 == 1] *= 0.3  # gullies and ribs: vertical edges everywhere
    sky = np.broadcast_to((lat > np.radians(60.0))[:, None], (h, w)).copy()
    rock, e_s, steep = _terrain_columns(img, sky, PriorConfig())
    assert steep.all() and rock.all()  # vertical edges do not matter above a 60° skyline
    rock, _, steep = _terrain_columns(img, sky, PriorConfig(terrain_steep_deg=90.0))
    assert not steep.any() and rock.mean() < 0.1  # the vertical-edge test alone rejects them


def test_crowns_stand_at_their_trunks():
    # a forest: crowns hang over farther ground between the trunks; a fold at each column's own contact
    # put them there (AbsRel 0.53, δ1 0.66 at this size): they take their trunk's distance
    pano, gt, _ = _world("a forest", 512)
    depth, facts = prior_depth(pano, 1.6)
    absrel, d1, iou = _scores(depth, gt)
    assert facts["scene"] == "outdoor"
    assert absrel <= 0.3 and d1 >= 0.69 and iou >= 0.95, (absrel, d1, iou)


def test_segment_reach_spreads_within_a_colour_segment_and_reach():
    from worldgen.depth.prior import _segment_reach

    h, w = 128, 256
    feats = np.zeros((h, w, 3), np.float32)
    feats[20:60, 100:160] = (0.4, 0.4, 0.3)  # a crown
    feats[20:60, 40:60] = (0.4, 0.4, 0.3)  # the same colour, apart: another segment
    region = np.zeros((h, w), bool)
    region[20:64] = True
    contact = np.full(w, 64.0)
    d = np.full(w, 50.0)
    d[128] = 5.0  # the trunk under the crown
    out = _segment_reach(feats, region, d, contact, reach=5.0, eps=0.05, max_deg=45.0)
    # 5 m sideways from a trunk 5 m away is 45°, more than the crown's 30° half-width: all of it; the
    # same colour elsewhere is not joined to it, and what stands on its own foot keeps its distance
    assert (out[20:60, 100:160] == 5.0).all()
    assert (out[20:60, 40:60] == 50.0).all() and (out[60:64, 100:127] == 50.0).all()
    assert np.isinf(out[:20]).all()


def test_segment_reach_spreads_only_through_foliage():
    from worldgen.depth.prior import _segment_reach

    # a near boulder (5 m) before a grey rock face of its own colour, and a near trunk under a green
    # crown: the crown hangs over farther ground and takes the trunk's distance; the rock face stands on
    # its own foot beyond and keeps it, however like the boulder's its colour
    h, w = 128, 256
    feats = np.zeros((h, w, 3), np.float32)
    feats[20:60, 100:160] = (0.4, 0.4, 0.3)  # the crown
    feats[20:64, 170:230] = (0.3, 0.3, 0.5)  # the rock face, one segment with the boulder below it
    feats[50:64, 170:190] = feats[50:64, 211:230] = (0.1, 0.1, 0.2)  # the face's own foot, in shade
    leaf = np.zeros((h, w), bool)
    leaf[20:60, 100:160] = True
    region = np.zeros((h, w), bool)
    region[20:64] = True
    contact = np.full(w, 64.0)
    d = np.full(w, 50.0)
    d[128] = d[190:211] = 5.0  # the trunk; the boulder (of the face's colour, columns 190-210)
    any_colour = _segment_reach(feats, region, d, contact, reach=5.0, eps=0.05, max_deg=45.0)
    out = _segment_reach(feats, region, d, contact, reach=5.0, eps=0.05, max_deg=45.0, leaf=leaf)
    assert (any_colour[20:50, 170:230] == 5.0).all()  # without the foliage test the face comes near
    assert (out[20:60, 100:160] == 5.0).all()
    assert (out[20:50, 170:190] == 50.0).all() and (out[20:50, 211:230] == 50.0).all()


def test_plain_facade_over_a_street_of_like_colour():
    # a plain stone facade (no window columns: no vertical edges) from 40° above to 8° below the horizon
    # over an asphalt street with white lane marks: the ground colour learnt under the camera is broad
    # enough to take the facade for ground, but the facade's own colour carries on 8° below the horizon
    # and then steps to the asphalt: that step is its foot, 1.6 / tan 8° m away
    from worldgen.types import Panorama

    h, w = 128, 256
    rng = np.random.default_rng(1)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.4, 0.6, 1.0)
    asphalt = np.clip(0.3 + rng.normal(0, 0.05, (h, w)), 0, 1)[..., None] * np.ones(3, np.float32)
    img[70:] = asphalt[70:]
    img[100:104] = 0.9  # a lane mark
    img[118:121] = 0.9
    img[36:70] = (0.52, 0.48, 0.42)  # stone
    foot = 1.6 / np.tan(np.radians(8.0))
    depth, _ = prior_depth(Panorama(img), 1.6)
    lat60 = np.pi / 2 - np.pi * 60.5 / h  # a facade row 5° above the horizon
    assert np.median(depth.depth[60]) == pytest.approx(foot / np.cos(lat60), rel=0.15)
    flat, _ = prior_depth(Panorama(img), 1.6, PriorConfig(foot_deg=0))
    assert np.median(flat.depth[60]) > 2 * foot


@pytest.mark.parametrize("seed", [1, 3])
def test_lake_lies_below_the_shore(seed):
    # the camera stands on a spit of sand with the lake all around; the water is 0.45 m below the
    # sand, so at the camera's ground height every water pixel was 22 % too near (δ1 0.05)
    pano, gt, _ = _world("a lake", 256, seed)
    depth, _ = prior_depth(pano, 1.6)
    absrel, d1, iou = _scores(depth, gt)
    assert absrel <= 0.15 and d1 >= 0.75 and iou >= 0.95, (absrel, d1, iou)
    # the ground under the camera stays at the eye height
    assert depth.depth[-1].mean() == pytest.approx(1.6, rel=0.02)


def _mirror_lake(h: int, lake_to_deg: float) -> np.ndarray:
    """A blue sky fading to pale at the horizon; below it, down to ``lake_to_deg``, its mirror image
    dimmed to 60 % and fading to the water's own teal; sand below that."""
    lat = np.degrees(np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h)
    t = np.clip(np.abs(lat) / 60.0, 0, 1)[:, None]
    sky = (1 - t) * np.array([0.78, 0.84, 0.9]) + t * np.array([0.35, 0.55, 0.95])
    teal = np.array([0.12, 0.3, 0.32])
    water = 0.6 * sky * (1 - t) + teal * t
    img = np.where((lat > 0)[:, None], sky, np.where((lat > -lake_to_deg)[:, None], water, [0.85, 0.8, 0.65]))
    return np.repeat(img[:, None, :], 2 * h, 1).astype(np.float32)


def test_water_is_a_smooth_mirror_of_the_sky_not_the_ground_underfoot():
    from worldgen.depth.prior import _water
    from worldgen.depth.sky import sky_mask
    from worldgen.types import Panorama

    h = 128
    img = _mirror_lake(h, 50.0)
    sky = sky_mask(Panorama(img))
    water = _water(img, sky, PriorConfig())
    lat = np.degrees(np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h)
    # (the colour features are smoothed over 5 px: the rows next to the horizon's step are not smooth)
    assert water[(lat < -4) & (lat > -49)].all() and not water[lat < -52].any() and not water[lat > 0].any()
    # the same smooth, sky-coloured surface reaching the camera's feet is what the camera stands on
    # (a grey street under a pale sky), not water
    assert not _water(_mirror_lake(h, 91.0), sky, PriorConfig()).any()
    # and the prior puts the water below the sand: (1.6 + 0.45) / sin(depression)
    depth, _ = prior_depth(Panorama(img), 1.6)
    row = int(np.argmin(np.abs(lat + 20)))
    assert np.median(depth.depth[row]) == pytest.approx(2.05 / np.sin(np.radians(-lat[row])), rel=0.02)


def test_shaded_gravel_of_the_sky_s_colour_is_no_water():
    # gravel in the shade is lit by the sky and has its colour; its grain is a few pixels wide, so
    # the colours smoothed over 5 px (water_step) found it as smooth as water, and a garden path
    # (Blender's forest HDRI) was put 28 % too far, below the bank. Calm water is smooth per pixel.
    from worldgen.depth.prior import _water
    from worldgen.depth.sky import sky_mask
    from worldgen.types import Panorama

    h = 128
    img = _mirror_lake(h, 50.0)
    sky = sky_mask(Panorama(img))
    assert _water(img, sky, PriorConfig()).any()
    r, c = np.indices(img.shape[:2])
    grain = np.where((r + c) % 2 == 0, 1.12, 0.88)[..., None]  # pixel-scale grain, 12 % contrast
    gravel = np.where((r >= h // 2)[..., None], img * grain, img).astype(np.float32)
    assert not _water(gravel, sky, PriorConfig()).any()
    assert _water(gravel, sky, PriorConfig(water_texture=0)).any()  # (what the rule removes)


def test_trunks_under_a_closed_canopy_are_no_wall_of_rock():
    # under a closed canopy no sky is seen overhead in most columns, so their skyline stands at the
    # zenith all around: a "steep wall" to the terrain model (whatever its vertical edges), whose
    # foot, with the trunks' bases the floor's colour, is at the horizon: every trunk of viser's
    # forest-slope HDRI stood 94 m away. A wall of rock 92 m off that rises to 87° is 1.8 km high.
    from worldgen.depth.prior import _terrain_columns

    h, w = 128, 256
    lat = np.degrees(np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h)[:, None] * np.ones((1, w))
    cols = np.arange(w)[None, :] * np.ones((h, 1))
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.45, 0.33, 0.22)  # forest floor
    img[lat > 0] = (0.35, 0.33, 0.3)  # the wood behind
    img[(lat > 0) & (cols % 16 < 4)] = (0.25, 0.18, 0.12)  # trunks: vertical edges
    sky = (lat > 60) & (cols < 0.3 * w)  # sky seen only in a clearing to one side
    img[sky] = (0.45, 0.62, 0.9)
    closed = cols[0] >= 0.5 * w
    _, e_s, steep = _terrain_columns(img, sky, PriorConfig())
    assert np.degrees(e_s[closed]).min() > 89 and not steep[closed].any()
    _, _, steep_before = _terrain_columns(img, sky, PriorConfig(terrain_closed_deg=90))
    assert steep_before[closed].all()  # (what the rule removes)


def test_room_box_from_the_floor_line_where_the_ceiling_line_is_faint():
    # a white ceiling meets white plaster walls at a faint line, while its beams draw strong lines:
    # fitted to the ceiling line first, the box put one wall 1.2 m from the camera (truth 2.5-6 m).
    # The box fitted to the plain floor-wall line first carries more evidence on both lines
    pano, gt, _ = _world("a white modern living room interior at noon", 512, 1)
    depth, facts = prior_depth(pano, 1.6)
    absrel, d1, _ = _scores(depth, gt)
    assert facts["scene"] == "indoor" and min(facts["room_walls_m"]) > 2.0, facts
    assert absrel <= 0.13 and d1 >= 0.9, (absrel, d1)
    before, facts = prior_depth(pano, 1.6, PriorConfig(room_floor_margin=-1.0))
    assert min(facts["room_walls_m"]) < 1.5 and _scores(before, gt)[1] < 0.8  # (what the second box mends)


def test_room_is_both_boxes_where_their_evidence_ties(monkeypatch):
    # the ceiling-first and the floor-first boxes carry evidence within room_floor_margin of each
    # other: neither is taken alone, the room is their intersection (the nearer exit per ray)
    pano, gt, _ = _world("a cozy living room interior", 512, 3)
    depth, facts = prior_depth(pano, 1.6)
    assert facts["scene"] == "indoor" and facts["room_box"] == "both" and len(facts["room_walls2_m"]) == 4
    first, f1 = prior_depth(pano, 1.6, PriorConfig(room_floor_margin=-1.0))
    assert f1["room_box"] == "ceiling-first"
    assert _absrel(depth.depth, gt.depth) < _absrel(first.depth, gt.depth) - 0.05  # 0.187 -> 0.099
    assert (depth.depth <= first.depth + 1e-4).all()
    # the intersection is exactly the nearer of the two boxes' depths, ray by ray
    import worldgen.depth.prior as prior

    boxes, kept, score = prior._room_box(pano.image, 1.6, PriorConfig())
    assert kept == "both" and len(boxes) == 2
    singles = []
    for box in boxes:
        monkeypatch.setattr(prior, "_room_box", lambda *a, box=box: ([box], "ceiling-first", score))
        singles.append(prior.indoor_prior(pano, 1.6, PriorConfig())[0])
    np.testing.assert_array_equal(depth.depth, np.minimum(*singles))
    assert not np.array_equal(singles[0], singles[1])


def test_ground_in_shade_is_still_ground():
    # the ground model learns from evenly lit ground under the camera; the same grass a quarter
    # darker (a shadow, a slope turned from the sun) is ground, another colour is not
    from worldgen.depth.prior import _colour_model

    rng = np.random.default_rng(0)
    img = np.empty((64, 128, 3), np.float32)
    img[:] = (0.3, 0.5, 0.2) * (1 + 0.03 * rng.standard_normal((64, 128, 3)))  # grass
    img[:16] *= 0.75  # shaded
    img[16:24] = (0.5, 0.3, 0.3)  # a red-brown rock
    sample = np.zeros((64, 128), bool)
    sample[40:] = True
    tight = _colour_model(img, sample)
    loose = _colour_model(img, sample, shade=0.2)
    assert np.median(tight[:12]) > 4.0 > np.median(loose[:12])
    assert np.median(loose[17:23]) > 4.0


def test_canyon_floor_in_shade_reaches_the_walls():
    # canyon seed 4: the floor's far part lies in shade; where the ground model stopped there, the
    # walls stood a few metres away (AbsRel 0.258, δ1 0.69 at this size)
    pano, gt, _ = _world("a canyon", 512, 4)
    absrel, d1, iou = _scores(prior_depth(pano, 1.6)[0], gt)
    assert absrel <= 0.23 and d1 >= 0.72 and iou >= 0.95, (absrel, d1, iou)


def test_rock_bottom_finds_where_the_rock_above_a_green_mound_begins():
    from worldgen.depth.prior import _rock_bottom

    h, w = 64, 3
    img = np.zeros((h, w, 3), np.float32) + np.array([0.3, 0.35, 0.5], np.float32)  # bluish rock
    img[30:, 0] = (0.2, 0.4, 0.15)  # column 0: a green mound from row 30 down to its contact
    img[50:] = (0.2, 0.4, 0.15)  # the ground
    sky = np.zeros((h, w), bool)
    sky[:10] = True
    contact = np.array([50.0, 50.0, 50.0])
    top, share = _rock_bottom(img, sky, contact, 4)
    assert top[0] == 30 and share[0] == 1.0  # the mound's top row and its rows all green
    assert top[1] == 50 and share[1] == 0.0  # rock down to the contact: no mound


def test_rock_above_a_grassy_mound_stands_at_the_wall_not_the_mound():
    # mountains seed 1: green mounds 10-30 m away rise a few degrees above the horizon before the wall
    # of rock, along ~100° of longitude; their contact is near (5-10 m), and the rock above them stood
    # there (AbsRel 0.315 at this size); the wall's foot is hidden behind them, where its visible feet are
    # (the near-object rule is off here: at this size it alone takes most of the mounds as objects)
    pano, gt, _ = _world("a mountains", 256, 1)
    new = _absrel(prior_depth(pano, 1.6, PriorConfig(terrain_object_aspect=0.0))[0].depth, gt.depth)
    old = _absrel(prior_depth(pano, 1.6, PriorConfig(terrain_mound=0.0, terrain_object_aspect=0.0))[0].depth, gt.depth)
    assert new < 0.25 and new < old - 0.05, (new, old)
    assert _absrel(prior_depth(pano, 1.6)[0].depth, gt.depth) < 0.25


def test_the_wall_rises_above_a_boulder_before_it():
    # mountains seed 3: a boulder 8 m away, 5 m wide, spans ~35° of longitude before the wall of rock
    # (100-250 m); its columns stood at 8 m up to the skyline (AbsRel 0.337 at this size). The wall
    # stands above the boulder's top, set by its width (at most half as tall as wide)
    pano, gt, _ = _world("a mountains", 256, 3)
    new = _absrel(prior_depth(pano, 1.6)[0].depth, gt.depth)
    old = _absrel(prior_depth(pano, 1.6, PriorConfig(terrain_object_aspect=0.0))[0].depth, gt.depth)
    assert new < 0.33 and new < old - 0.015, (new, old)


def _canyon(stripes: bool, far: tuple[float, float]):
    """Columns of a square street canyon (walls 6 m from the camera on all four sides, their
    skyline at 60°) whose feet between longitudes far[0] and far[1] (degrees) read 80 m away."""
    h, w = 128, 256
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    phi = 2 * np.pi * (np.arange(w) + 0.5) / w
    d = 6.0 / np.maximum(np.abs(np.cos(phi)), np.abs(np.sin(phi)))  # the box's walls in plan view
    lon = np.degrees(phi)
    run = (lon > far[0]) & (lon < far[1])
    d_read = np.where(run, 80.0, d)
    img = np.zeros((h, w, 3), np.float32) + np.array([0.6, 0.5, 0.45], np.float32)
    if stripes:
        img[: h // 2, (np.arange(w) // 6) % 2 == 1] *= 0.4  # rows of windows: vertical edges
    sky = np.broadcast_to((lat > np.radians(60.0))[:, None], (h, w)).copy()
    return img, sky, d, d_read, run


def test_a_facade_s_foot_hidden_by_a_parked_van_lies_between_its_neighbours():
    from worldgen.depth.prior import _features, _occluded_feet, _vertical_share

    img, sky, d, d_read, run = _canyon(True, (12.0, 38.0))
    steep = np.ones(d.shape, bool)
    cfg = PriorConfig()
    mask, out = _occluded_feet(
        d_read, steep, d_read >= cfg.terrain_foot, _vertical_share(_features(img), sky, cfg), cfg
    )
    assert (mask == run).all()
    np.testing.assert_allclose(out[run], d[run], rtol=1e-6)  # on the wall's line: exact
    assert (out[~run] == d_read[~run]).all()
    # a wall of rock has no windows: its far feet stay far
    img, sky, d, d_read, run = _canyon(False, (12.0, 38.0))
    mask, _ = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, _vertical_share(_features(img), sky, cfg), cfg)
    assert not mask.any()
    # nor where most feet around are far (a boulder before a wall)
    img, sky, d, d_read, run = _canyon(True, (10.0, 170.0))
    mask, _ = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, _vertical_share(_features(img), sky, cfg), cfg)
    assert not mask.any()


def test_a_hidden_foot_beside_the_backdrop_takes_its_seen_flank():
    # A photo world or a partial panorama: a facade at the seen part's edge whose foot a parked car
    # hides has one flank in the made-up backdrop. Its seen flank sets its foot (the street's 200°
    # sweep: 75-117 m where the truth is 7-9 m, AbsRel 0.94 -> 0.42); with every column seen it has
    # no flank on that side within reach and keeps its far foot.
    from worldgen.depth.prior import _features, _occluded_feet, _vertical_share

    img, sky, d, d_read, run = _canyon(True, (12.0, 38.0))
    lon = np.degrees(2 * np.pi * (np.arange(d.size) + 0.5) / d.size)
    seen = lon > 12.0  # the backdrop ends where the hidden feet begin
    steep = np.ones(d.shape, bool)
    cfg = PriorConfig()
    vs = _vertical_share(_features(img), sky, cfg)
    mask, out = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, vs, cfg, seen)
    assert (mask == run).all()
    first_right = np.flatnonzero(~run & (lon > 38.0))[0]
    np.testing.assert_allclose(out[run], d_read[first_right])  # the seen flank's distance
    # all seen: both flanks are known, the foot lies on the line between them, as before
    mask_all, out_all = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, vs, cfg, np.ones_like(seen))
    none_given = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, vs, cfg)
    assert (mask_all == none_given[0]).all() and np.array_equal(out_all, none_given[1])
    # the backdrop also swallows the seen flank's side beyond reach (30°): the foot stays far
    seen_far = (lon > 12.0) & ~((lon > 38.0) & (lon < 80.0))
    mask, _ = _occluded_feet(d_read, steep, d_read >= cfg.terrain_foot, vs, cfg, seen_far)
    assert not mask[run].any()


def test_a_dado_s_top_is_not_the_floor_line():
    # Blender's corridor: a dado (a dark panel up to 1.1 m, a pale rail on top) runs round the walls
    # and its top line outweighs the floor-wall line; taken for it, the room came out 3.3 m high and
    # every wall twice as far. A corridor 2 x 9 m, 2.5 m high, camera 1.6 m up, 3 m from one end
    from worldgen.types import Panorama

    h, w, eye, ceil = 256, 512, 1.6, 0.9
    # walls 0.85 and 1.15 m to the sides, 3 m ahead (v < 0) and 6 m behind
    lat, _, d, rf, rc, rw = _box_rays(h, w, eye, ceil, np.array([0.85, 1.15, 6.0, 3.0]))
    gt = np.minimum(np.minimum(rf, rc), rw)
    wall = rw <= np.minimum(rf, rc)
    z = eye + d[None] * np.tan(lat)[:, None]  # height above the floor on the walls, metres
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.78, 0.75, 0.68)  # walls above the dado
    img[wall & (z < 1.1)] = (0.42, 0.5, 0.55)  # the dado's panel
    img[wall & (z >= 1.06) & (z < 1.1)] = (0.97, 0.97, 0.95)  # its rail
    img[rc < np.minimum(rf, rw)] = (0.6, 0.6, 0.58)  # ceiling
    img[rf < np.minimum(rc, rw)] = (0.55, 0.52, 0.48)  # a floor close to the panel's brightness
    new, facts = prior_depth(Panorama(img), eye, PriorConfig(scene="indoor"))
    old, facts_old = prior_depth(Panorama(img), eye, PriorConfig(scene="indoor", room_floor_peak=0.0))
    assert facts["ceiling_above_eye_m"] == pytest.approx(ceil, rel=0.1), facts
    assert _absrel(new.depth, gt) < 0.1 < _absrel(old.depth, gt), (_absrel(new.depth, gt), _absrel(old.depth, gt))


def test_a_photo_s_room_is_measured_on_the_photo_s_columns_alone():
    # a photo world's backdrop carries each of the photo's rows round the sphere: a round room at one
    # distance whose lines outweighed the photo's own walls (Blender's corridor photo: AbsRel 0.64 in
    # the frustum, 0.21 measured on the photo's columns). Whatever lies outside those columns does not
    # move the room seen in them
    from worldgen.depth.prior import indoor_prior
    from worldgen.types import Panorama

    room, _, _ = _world("a white modern room interior", 512, 2)
    other, _, _ = _world("a stone hall interior", 512, 1)
    cols = np.zeros(512, bool)
    cols[192:320] = True  # 90° ahead
    b = room.image.copy()
    b[:, ~cols] = other.image[:, ~cols]  # another room outside the photo's columns

    def change(columns):
        da, _ = indoor_prior(room, 1.6, PriorConfig(), columns)
        db, _ = indoor_prior(Panorama(b), 1.6, PriorConfig(), columns)
        return float(np.mean(np.abs(da[:, cols] - db[:, cols]) / da[:, cols]))

    assert change(cols) < 0.01 < 0.05 < change(None)


def test_the_prior_stage_measures_a_photo_world_on_the_photo(tmp_path):
    # the depth stage hands the photo's columns to the prior (from the photo backend's semantics)
    from PIL import Image

    from worldgen.cli.main import main
    from worldgen.geometry.equirect import equirect_to_perspective
    from worldgen.types import Camera

    room, _, _ = _world("a white modern room interior", 512, 2)
    photo = equirect_to_perspective(room.image, Camera.perspective(320, 240, 90.0), "bilinear")
    Image.fromarray((np.clip(photo, 0, 1) * 255).round().astype(np.uint8)).save(tmp_path / "p.png")
    out = tmp_path / "run"
    code = main(
        [
            "generate",
            "--image",
            str(tmp_path / "p.png"),
            "--fov",
            "90",
            "-o",
            str(out),
            "--until",
            "depth",
            "-q",
            "--set",
            "panorama.width=512",
        ]
    )
    assert code == 0
    facts = json.loads((out / "manifest.json").read_text())["stages"]["depth"]["report"]
    from worldgen.stages.photo import PhotoConfig, photo_columns, photo_panorama

    world, sem, _ = photo_panorama(
        np.asarray(Image.open(tmp_path / "p.png").convert("RGB")), 90.0, PhotoConfig(width=512)
    )
    _, on_photo = prior_depth(world, 1.6, PriorConfig(), photo_columns(sem, (256, 512)))
    _, on_all = prior_depth(world, 1.6, PriorConfig())
    assert facts["room_walls_m"] == on_photo["room_walls_m"] != on_all["room_walls_m"]
