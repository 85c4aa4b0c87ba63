"""The sheet's "background" part: the completed hidden surfaces as a textured mesh (worldgen.mesh.layers)."""

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.mesh.layers import LayeredSheetConfig, build_layered_sheet


@pytest.fixture(scope="module")
def room():
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt("a cozy living room interior", 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=256, previews=False))
    return pano, depth


@pytest.fixture(scope="module")
def scenes(room):
    pano, depth = room
    cfg = LayeredSheetConfig(max_triangles=20_000, layer_triangles=4_000, collision_triangles=2_000)
    return (
        build_layered_sheet(pano, depth, cfg),
        build_layered_sheet(
            pano, depth, LayeredSheetConfig(max_triangles=20_000, collision_triangles=2_000, walk_radius=0)
        ),
    )


def test_background_part_is_textured_and_within_budgets(scenes):
    layered, plain = scenes
    assert "background" not in plain and list(layered.parts)[:2] == ["world", "background"]
    bg = layered["background"]
    assert 0 < bg.n_faces <= 4_000
    assert bg.texture is not None and bg.uvs is not None
    # With nested occluders (a chair in front of a table) the nearer layer's texture is stacked
    # below the first layer's in one atlas.
    ht, wt = layered["world"].texture.shape[:2]
    n_layers = 2 if layered.report["layers"]["nested_pixels"] else 1
    assert bg.texture.shape == (n_layers * ht, wt, 3)
    assert float(bg.uvs[:, 1].min()) >= 0 and float(bg.uvs[:, 1].max()) <= 1
    assert layered["world"].n_faces + bg.n_faces <= 20_000
    assert layered["collision"].n_faces <= 2_000
    assert layered.report["layers"]["hidden_pixels"] > 0


def test_background_is_hidden_from_the_capture_point(scenes, room):
    from worldgen.evaluation.geometry import _Caster
    from worldgen.geometry.equirect import equirect_directions

    layered, _ = scenes
    _, depth = room
    dirs = equirect_directions(64).reshape(-1, 3)
    hit = _Caster([(layered[p].vertices, layered[p].faces) for p in ("world", "background")]).cast(np.zeros(3), dirs)
    got = np.isfinite(hit["t_hit"])
    # Seen from where the panorama was taken, the background lies behind the world (its seam
    # ring coincides with visible background, so a few rays may hit it there).
    assert (hit["geometry_ids"][got] == 1).mean() < 0.02


def test_walking_aside_sees_fewer_holes(scenes, room):
    from worldgen.evaluation.geometry import _Caster
    from worldgen.geometry.equirect import perspective_directions
    from worldgen.splats.views import view_camera

    layered, plain = scenes
    missed = []
    for scene in (plain, layered):
        parts = [p for p in ("world", "background", "sky") if p in scene]
        caster = _Caster([(scene[p].vertices, scene[p].faces) for p in parts])
        n = 0
        for yaw in (0.0, 90.0, 180.0, 270.0):
            cam = view_camera(yaw, -15.0, 64, position=np.array([0.8, 0.0, 0.0]))
            n += int((~np.isfinite(caster.cast(np.array([0.8, 0.0, 0.0]), perspective_directions(cam))["t_hit"])).sum())
        missed.append(n)
    assert missed[1] < 0.5 * missed[0]


def test_bad_options_name_the_problem():
    with pytest.raises(InputError, match="walk_radius"):
        LayeredSheetConfig(walk_radius=-1)
    with pytest.raises(InputError, match="inpainter"):
        LayeredSheetConfig(inpaint="nope")
    with pytest.raises(InputError, match="sky_guard_blend"):
        LayeredSheetConfig(sky_guard_blend=2.0)


def _holes_aside(scene, position, size=64, pitch=-10.0) -> float:
    """Share of view rays, from ``position``, that hit no render part (4 yaws)."""
    from worldgen.evaluation.geometry import _Caster
    from worldgen.geometry.equirect import perspective_directions
    from worldgen.splats.views import view_camera

    parts = [p for p in ("world", "background", "sky") if p in scene]
    caster = _Caster([(scene[p].vertices, scene[p].faces) for p in parts])
    miss = []
    for yaw in (0.0, 90.0, 180.0, 270.0):
        cam = view_camera(yaw, pitch, size, position=position)
        miss.append(~np.isfinite(caster.cast(position, perspective_directions(cam))["t_hit"]))
    return float(np.mean(miss))


def test_forest_walk_has_few_holes():
    # Many thin occluders (trunks) in front of others and of the ground and sky: 1 m to each
    # side the layered mesh leaves well under 1 % of the view open (the plain sheet several times
    # more), the bound at 1 m being 0.5 % on full-size worlds.
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt("a pine forest by a lake at sunset", 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=512, previews=False))
    cfg = dict(max_triangles=40_000, collision_triangles=0, texture_width=1024)
    layered = build_layered_sheet(pano, depth, LayeredSheetConfig(layer_triangles=10_000, **cfg))
    plain = build_layered_sheet(pano, depth, LayeredSheetConfig(walk_radius=0, **cfg))
    holes = {}
    for name, scene in (("layered", layered), ("plain", plain)):
        holes[name] = np.mean(
            [_holes_aside(scene, np.array(p)) for p in ((1.0, 0, 0), (-1.0, 0, 0), (0, 0, 1.0), (0, 0, -1.0))]
        )
    print(holes)
    assert holes["layered"] < 0.01
    assert holes["layered"] < 0.5 * holes["plain"]
