"""Blender 5.0 (the ``bpy`` wheel, in ``.venv-blender``) imports world.glb and world.usdz headless and
renders them with Cycles from the capture point through the factory startup camera.

bpy pins numpy 1.26, so it lives in its own venv (``make blender``); the render runs there as a
subprocess (tools/blender_render.py) and the image is compared here with the panorama cut to the
same view. ``make test`` builds the venv and sets WORLDGEN_REQUIRE_CLIENTS=1, so there the test
cannot skip.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _engine_scenes import FOV_Y, H, W, cut_view, drawn_primitives, psnr, read_glb, render, visual_parts, world

from worldgen.exporters import export_glb, export_usdz, resolve

ROOT = Path(__file__).resolve().parents[1]
BLENDER_PY = Path(os.environ.get("WORLDGEN_BLENDER_PYTHON", ROOT / ".venv-blender" / "bin" / "python"))

if not BLENDER_PY.is_file() and os.environ.get("WORLDGEN_REQUIRE_CLIENTS") != "1":
    pytest.skip(f"no Blender Python at {BLENDER_PY} (run `make blender`)", allow_module_level=True)


def _blender(
    path: Path, look, clip_end: float | None = None, eye=(0.0, 0.0, 0.0), extra: tuple[str, ...] = ()
) -> tuple[dict, np.ndarray]:
    from PIL import Image

    out = path.with_suffix(".render.png")
    cmd = [str(BLENDER_PY), str(ROOT / "tools" / "blender_render.py"), str(path) if path.exists() else "-", str(out)]
    cmd += list(extra)
    cmd += [
        "--eye",
        ",".join(map(str, eye)),
        "--look",
        ",".join(map(str, look)),
        "--width",
        str(W),
        "--height",
        str(H),
        "--fov-y",
        str(FOV_Y),
    ]
    if clip_end is not None:
        cmd += ["--clip-end", str(clip_end)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return info, np.asarray(Image.open(out).convert("RGB"))


@pytest.fixture(scope="module")
def harbour():
    return world("a harbour with wooden boats at dawn")  # reaches ~3.3 km; sky dome ~4.9 km as built


def test_blender_preset_glb_shows_world_and_sky_under_the_startup_camera(tmp_path, harbour):
    pano, scene = harbour
    p = tmp_path / "world.glb"
    p.write_bytes(export_glb(scene, resolve("blender")))
    info, img = _blender(p, (0, 0, -1))
    assert info["clip"][1] == pytest.approx(100.0)  # Blender's startup camera, untouched
    assert info["rendered_objects"] == visual_parts(scene)  # the collision shape is not an object
    assert psnr(img, cut_view(pano, (0, 0, -1))) > 35.0  # measured 42.0 dB


def test_default_preset_needs_the_documented_clip_end_in_blender(tmp_path, harbour):
    pano, scene = harbour
    p = tmp_path / "world.glb"
    p.write_bytes(export_glb(scene, resolve("default")))  # sky at 900 m for a 1,000 m far plane
    ref = cut_view(pano, (1, 0, 0))
    _, clipped = _blender(p, (1, 0, 0))
    _, advised = _blender(p, (1, 0, 0), clip_end=1000.0)  # docs/engines.md: raise Clip End to 1 km
    assert psnr(clipped, ref) < 20.0 < 35.0 < psnr(advised, ref)  # measured 9.7 and 40.8 dB


def test_blender_imports_usdz_without_the_collision_prim(tmp_path, harbour):
    pano, scene = harbour
    p = tmp_path / "world.usdz"
    p.write_bytes(export_usdz(scene, resolve("blender")))
    info, img = _blender(p, (0, 0, 1))
    assert info["rendered_objects"] == visual_parts(scene) and info["worlds"] >= 1
    assert psnr(img, cut_view(pano, (0, 0, 1))) > 35.0  # measured 41.4 dB


def test_blender_from_one_metre_away_matches_independent_viewer(tmp_path, harbour):
    _, scene = harbour
    glb = export_glb(scene, resolve("blender"))
    p = tmp_path / "world.glb"
    p.write_bytes(glb)
    eye = (1.0, 0.0, 0.0)
    _, img = _blender(p, (1.0, 0.0, -1.0), eye=eye)
    doc, blob = read_glb(glb)
    equi, _ = render(drawn_primitives(doc, blob), width=1024, eye=eye)
    assert psnr(img, cut_view(equi, (0, 0, -1))) > 25.0  # measured 29.5 dB (nearest-texel viewer vs Cycles)


def test_sky_hdr_as_blender_world_with_the_documented_mapping(tmp_path, harbour):
    """docs/engines.md: World -> Environment Texture sky.hdr with a Mapping Z rotation of -90 degrees."""
    from PIL import Image

    from worldgen.exporters import export_assets

    files, _ = export_assets(harbour[1], None, ["glb"], resolve("blender"))
    (tmp_path / "sky.hdr").write_bytes(files["sky.hdr"])
    env = np.asarray(Image.open(io.BytesIO(files["sky.png"])).convert("RGB"))
    look = (0.0, 0.3, -1.0)
    extra = ("--environment", str(tmp_path / "sky.hdr"), "--environment-z-deg", "-90")
    info, img = _blender(tmp_path / "none", look, extra=extra)  # no file to import: the World alone
    assert info["rendered_objects"] == []
    assert psnr(img, cut_view(env, look)) > 32.0  # measured 38.7 dB: Blender reads our RGBE and the mapping holds
    assert psnr(img, cut_view(env, (1.0, 0.3, 0.0))) < 25.0  # a quarter turn off: ~17 dB
