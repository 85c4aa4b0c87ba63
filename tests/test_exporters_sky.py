"""Sky environment files and the USD DomeLight; the USD collision prim is not renderable (pxr checks)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from _engine_scenes import visual_parts, world

from worldgen.exporters import export_assets, export_usdz, resolve
from worldgen.exporters.sky import encode_hdr, sky_environment, usd_latlong


@pytest.fixture(scope="module")
def harbour():
    return world("a harbour with wooden boats at dawn")


def _decode_hdr(data: bytes) -> np.ndarray:
    """An RGBE reader written from the Radiance format description (RLE scanlines, literal runs too)."""
    head_end = data.index(b"\n\n") + 2
    line_end = data.index(b"\n", head_end)
    _, h, _, w = data[head_end:line_end].split()
    H, W = int(h), int(w)
    raw, pos = data[line_end + 1 :], 0
    out = np.zeros((H, W, 4), np.uint8)
    for y in range(H):  # a reader, not a hot path: scanline by scanline
        assert raw[pos : pos + 2] == b"\x02\x02" and (raw[pos + 2] << 8 | raw[pos + 3]) == W
        pos += 4
        for c in range(4):
            x = 0
            while x < W:
                n = raw[pos]
                pos += 1
                if n > 128:  # a run
                    out[y, x : x + n - 128, c] = raw[pos]
                    pos += 1
                    x += n - 128
                else:
                    out[y, x : x + n, c] = np.frombuffer(raw, np.uint8, n, pos)
                    pos += n
                    x += n
    e = out[..., 3].astype(int)
    f = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0)
    return (out[..., :3] + 0.5) * f[..., None] * (e[..., None] > 0)


def test_hdr_round_trip_within_rgbe_precision():
    rng = np.random.default_rng(0)
    lin = rng.random((6, 200, 3)) ** 3  # width 200: one 128 literal run + a 72 tail
    back = _decode_hdr(encode_hdr(lin))
    assert back.shape == lin.shape
    assert (np.abs(back - lin) <= lin.max(axis=2, keepdims=True) / 128 + 1e-6).all()


def test_environment_is_the_sky_with_the_near_world_filled(harbour):
    pano, scene = harbour
    env = sky_environment(scene, resolve("default"))
    assert env.shape == pano.shape and env.dtype == np.uint8
    small = env.astype(np.float64)
    top = slice(0, 40)  # the upper sky: the panorama itself
    assert np.abs(small[top] - pano[top]).mean() < 3.0
    # Near ground (bottom rows) is replaced by horizon colours: no longer the panorama's ground.
    bottom = slice(110, 128)
    assert np.abs(small[bottom] - pano[bottom]).mean() > 5.0
    assert sky_environment(world("a small room")[1], resolve("default")) is None  # no sky indoors


def test_export_writes_sky_png_and_hdr(harbour):
    from PIL import Image

    files, report = export_assets(harbour[1], None, ["glb"], resolve("unity"))
    assert {"sky.png", "sky.hdr"} <= set(files) and report["placement"]["environment"] == ["sky.hdr", "sky.png"]
    png = np.asarray(Image.open(io.BytesIO(files["sky.png"])))
    hdr = _decode_hdr(files["sky.hdr"])
    from worldgen.types import srgb_to_linear

    np.testing.assert_allclose(hdr, srgb_to_linear(png / 255.0), atol=0.01)


def test_usdz_dome_light_resolves_inside_package_and_collision_is_not_renderable(tmp_path, harbour):
    from pxr import Usd, UsdGeom, UsdLux, UsdPhysics

    p = tmp_path / "world.usdz"
    p.write_bytes(export_usdz(harbour[1], resolve("omniverse")))
    stage = Usd.Stage.Open(str(p))
    lights = [x for x in stage.Traverse() if x.IsA(UsdLux.DomeLight)]
    assert len(lights) == 1
    light = UsdLux.DomeLight(lights[0])
    assert light.GetTextureFormatAttr().Get() == "latlong"
    asset = light.GetTextureFileAttr().Get()
    assert asset.resolvedPath and "world.usdz[" in asset.resolvedPath  # resolved inside the package
    with zipfile.ZipFile(p) as z:
        inner = asset.resolvedPath.split("[", 1)[1].rstrip("]")
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(z.read(inner))))
    env = sky_environment(harbour[1], resolve("omniverse"))
    np.testing.assert_array_equal(img, usd_latlong(env))
    colliders = [x for x in stage.Traverse() if x.HasAPI(UsdPhysics.CollisionAPI)]
    assert colliders
    for prim in colliders:
        assert UsdGeom.Imageable(prim).ComputeVisibility() == UsdGeom.Tokens.invisible
    # Every other mesh prim is visible and rendered: world and sky.
    drawn = [
        x.GetParent().GetName()
        for x in stage.Traverse()
        if x.IsA(UsdGeom.Mesh)
        and UsdGeom.Imageable(x).ComputeVisibility() != UsdGeom.Tokens.invisible
        and UsdGeom.Imageable(x).ComputePurpose() in (UsdGeom.Tokens.default_, UsdGeom.Tokens.render)
    ]
    assert sorted(drawn) == visual_parts(harbour[1])


def test_usd_dome_orientation_matches_openexr_latlong():
    # OpenEXR latlong (UsdLux): column u looks along (sin(pi - 2 pi u), 0, cos(pi - 2 pi u)) on the
    # horizon; worldgen's column u looks along (sin(2 pi u - pi), 0, -cos(2 pi u - pi)).
    W = 16
    img = np.zeros((8, W, 3), np.uint8)
    img[:, :, 0] = np.arange(W)[None, :]
    rolled = usd_latlong(img)
    for col in range(W):
        u = (col + 0.5) / W
        d_usd = np.array([np.sin(np.pi - 2 * np.pi * u), 0.0, np.cos(np.pi - 2 * np.pi * u)])
        lon = np.arctan2(d_usd[0], -d_usd[2])  # worldgen longitude of that direction
        src = int(np.floor(((lon + np.pi) / (2 * np.pi)) * W + 1e-9)) % W
        assert rolled[0, col, 0] == src


def test_no_environment_from_a_sky_texture_that_is_not_a_panorama(harbour):
    from worldgen.types import Mesh, MeshScene

    sky = harbour[1]["sky"]
    odd = Mesh(sky.vertices, sky.faces, sky.normals, sky.uvs, sky.texture[:, : sky.texture.shape[1] // 2 + 2].copy())
    assert sky_environment(MeshScene({"world": harbour[1]["world"], "sky": odd}), resolve("default")) is None
