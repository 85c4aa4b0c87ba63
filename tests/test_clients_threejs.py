"""three.js (GLTFLoader, r187 from node_modules) in headless Chromium loads world.glb as a web user would.

Renders from the capture point with three.js's default camera far plane (2,000 m) and compares
with the panorama cut to the same view; from 1 m away it is compared with the independent
viewer of ``_engine_scenes`` rendering the same GLB from the same point.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from _engine_scenes import FOV_Y, H, W, cut_view, drawn_primitives, psnr, read_glb, render, visual_parts, world
from _threejs import missing, render_glb

from worldgen.exporters import export_glb, resolve

# `make test` installs chromium and three and sets WORLDGEN_REQUIRE_CLIENTS=1: there it cannot skip.
pytestmark = pytest.mark.skipif(
    missing() is not None and os.environ.get("WORLDGEN_REQUIRE_CLIENTS") != "1", reason=f"three.js client: {missing()}"
)


@pytest.fixture(scope="module")
def harbour():
    return world("a harbour with wooden boats at dawn")


@pytest.mark.parametrize(("engine", "look"), [("web", (0, 0, -1)), ("default", (1, 0, 0)), ("blender", (0, 0, 1))])
def test_threejs_shows_world_and_sky_not_collision(harbour, engine, look):
    pano, scene = harbour
    r = render_glb(export_glb(scene, resolve(engine)), W, H, FOV_Y, (0, 0, 0), look)
    assert r["ok"], r.get("error")
    assert r["far"] == 2000  # three.js's default camera, untouched
    assert sorted(n.rstrip("_0123456789") for n in r["drawn"]) == visual_parts(scene)
    assert psnr(r["image"], cut_view(pano, look)) > 30.0  # measured 36.8-37.1 dB; collision drawn: ~6 dB


def test_threejs_from_one_metre_away_matches_independent_viewer(harbour):
    _, scene = harbour
    glb = export_glb(scene, resolve("web"))
    eye, look = (1.0, 0.0, 0.0), (1.0, 0.0, -1.0)
    r = render_glb(glb, W, H, FOV_Y, eye, look)
    assert r["ok"], r.get("error")
    doc, blob = read_glb(glb)
    equi, _ = render(drawn_primitives(doc, blob), width=1024, eye=eye)
    ref = cut_view(equi, (0, 0, -1))
    assert psnr(r["image"], ref) > 25.0  # measured 29.1 dB (nearest-texel viewer vs WebGL filtering)


@pytest.fixture(scope="module")
def harbour_splats():
    from worldgen.exporters import export_assets
    from worldgen.procedural.backend import ProceduralConfig, synthesize
    from worldgen.procedural.spec import parse_prompt
    from worldgen.splats.init import init_gaussians

    spec, _ = parse_prompt("a harbour with wooden boats at dawn", 0)
    pano, depth, _ = synthesize(spec, 1.6, ProceduralConfig(width=128))
    cloud = init_gaussians(pano, depth)  # 8,192 splats; the sky's lie ~4.9 km out before folding
    files, report = export_assets(None, cloud, ["spz", "splat-glb"], resolve("web"))
    return pano.to_uint8(), cloud, files, report


def test_spark_renders_the_web_preset_splats_with_their_sky(harbour_splats):
    """Spark 2.2 (World Labs) loads ``splats.spz`` (SPZ v3) and shows world and sky under the 2,000 m far plane."""
    from _threejs import render_splats

    pano, cloud, files, report = harbour_splats
    assert report["splat_placement"]["folded"] and report["splat_placement"]["reach_m"][1] < 0.8 * 2000
    r = render_splats(files["splats.spz"], W, H, FOV_Y, (0, 0, 0), (0, 0, -1), frames=12)
    assert r["ok"], r.get("error")
    assert r["count"] == len(cloud)
    assert psnr(r["image"], cut_view(pano, (0, 0, -1))) > 22.0  # measured 26.7 dB; sky clipped: ~5 dB


def test_threejs_gaussian_splat_addon_renders_splats_glb(harbour_splats):
    """three r187's GLTFLoader + GaussianSplat addon (WebGPURenderer, WebGL fallback) loads ``splats.glb``.

    The addon ignores KHR_gaussian_splatting's ``colorSpace`` (it treats the colours as linear), so
    the page shows worldgen's display-referred ("srgb_rec709_display") colours with the sRGB output
    encoding off; with it on they come out washed out (measured 13.5 dB).
    """
    from _threejs import render_splat_glb

    pano, _, files, _ = harbour_splats
    r = render_splat_glb(files["splats.glb"], W, H, FOV_Y, (0, 0, 0), (0, 0, -1))
    assert r["ok"], r.get("error")
    assert r["count"] == 1  # one GaussianSplat object
    assert psnr(r["image"], cut_view(pano, (0, 0, -1))) > 22.0  # measured 26.3 dB (Spark on the SPZ: 26.7 dB)


def test_sky_hdr_as_threejs_background_with_the_documented_rotation(harbour):
    """docs/engines.md: HDRLoader + EquirectangularReflectionMapping, scene.backgroundRotation.y = pi/2."""
    import io

    from _threejs import render_environment
    from PIL import Image

    from worldgen.exporters import export_assets

    files, _ = export_assets(harbour[1], None, ["glb"], resolve("web"))
    env = np.asarray(Image.open(io.BytesIO(files["sky.png"])).convert("RGB"))
    look = (0.0, 0.3, -1.0)
    r = render_environment(files["sky.hdr"], W, H, FOV_Y, look, math.pi / 2)
    assert r["ok"], r.get("error")
    assert psnr(r["image"], cut_view(env, look)) > 32.0  # measured 37.4 dB; without the rotation ~18 dB
