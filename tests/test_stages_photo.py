"""Photo -> world: placement at the EXIF field of view, soft backdrop, backdrop kept out of collision."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from worldgen.cli.main import main
from worldgen.depth.prior import prior_depth
from worldgen.geometry import equirect_to_perspective
from worldgen.mesh.sheet import SheetConfig, build_sheet
from worldgen.stages.photo import BACKDROP_ID, PhotoConfig, backdrop_mask, photo_panorama
from worldgen.types import Camera


def _photo(path, f35=None):
    """A 4:3 photo of a procedural meadow at a 70° horizontal field of view."""
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt("a meadow", 0)
    pano, _, _ = synthesize(spec, 1.6, ProceduralConfig(width=512, antialias=False, previews=False))
    img = equirect_to_perspective(pano.image, Camera.perspective(160, 120, 70.0))
    exif = Image.Exif()
    if f35:
        exif.get_ifd(0x8769)[0xA405] = f35
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path, exif=exif, quality=95)
    return path


def test_photo_world_from_the_cli(tmp_path):
    photo = _photo(tmp_path / "meadow.jpg", f35=25)
    out = tmp_path / "run"
    assert (
        main(
            ["generate", "--image", str(photo), "--until", "depth", "-q", "-o", str(out), "--set", "panorama.width=256"]
        )
        == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    rep = m["stages"]["panorama"]["report"]
    assert m["stages"]["panorama"]["backend"] == "photo" and rep["fov_from"] == "exif-35mm"
    assert abs(rep["fov_deg"] - 69.4) < 1.0 and 0.03 < rep["photo_coverage"] < 0.2
    assert m["stages"]["depth"]["backend"] == "prior"
    sem = np.load(out / "semantics.npz")
    assert (sem["ids"] == BACKDROP_ID).mean() > 0.8
    # --fov wins over EXIF
    assert (
        main(
            [
                "generate",
                "--image",
                str(photo),
                "--until",
                "panorama",
                "-q",
                "-o",
                str(out),
                "--fov",
                "90",
                "--set",
                "panorama.width=256",
            ]
        )
        == 0
    )
    rep = json.loads((out / "manifest.json").read_text())["stages"]["panorama"]["report"]
    assert rep["fov_from"] == "--fov" and rep["fov_deg"] == 90.0


def test_backdrop_is_soft_and_out_of_collision(tmp_path):
    photo = np.asarray(Image.open(_photo(tmp_path / "m.jpg")))
    pano, sem, facts = photo_panorama(photo, 70.0, PhotoConfig(width=512))
    back = backdrop_mask(sem, (256, 512))
    assert sem.mask("backdrop").mean() > 0.8 and not back[128, 256]  # the photo looks forward, at the centre
    assert 0.5 < back.mean() < sem.mask("backdrop").mean()  # the floor below the photo is not scenery
    # soft: no texture outside the photo (blurred), and no hard seam at the photo's border
    g = np.abs(np.diff(pano.image.mean(-1), axis=1))
    assert g[back[:, 1:] & back[:, :-1]].mean() < 0.01
    depth, _ = prior_depth(pano, 1.6)
    scene = build_sheet(pano, depth, SheetConfig(max_triangles=50000, collision_triangles=20000), sem, 1.6)
    col = scene["collision"].vertices
    # every collision vertex lies in the photo's frustum (forward, within its half-angle plus a cell),
    # or on the floor under the viewer: the ground plane out to where the photo's lower edge meets it
    ang = np.degrees(np.arctan2(np.abs(col[:, 0]), -col[:, 2]))
    bottom = np.arctan(np.tan(np.radians(35.0)) * 120 / 160)  # half the 160x120 photo's vertical FOV
    floor_radius = 1.6 / np.tan(bottom)
    on_floor = (np.abs(col[:, 1] + 1.6) < 0.05) & (np.hypot(col[:, 0], col[:, 2]) < floor_radius * 1.3)
    assert ((col[:, 2] < 0) & (ang < 35.0 + 8.0) | on_floor).all()
    # found as a new user walking through the GLB: nothing under the capture point, a player spawned
    # there fell through; now the floor is solid under the viewer and 1 m around, behind too
    import open3d as o3d

    cast = o3d.t.geometry.RaycastingScene()
    cast.add_triangles(
        o3d.core.Tensor(col.astype(np.float32)), o3d.core.Tensor(scene["collision"].faces.astype(np.uint32))
    )
    rays = np.array([[x, 0, z, 0, -1, 0] for x, z in ((0, 0), (0, 1), (1, 0), (-1, 0), (0, -1))], np.float32)
    hit = cast.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    assert np.allclose(hit, 1.6, atol=0.05), hit
    # the ground in front of the camera is walkable: collision vertices at the eye height below
    assert (np.abs(col[:, 1] + 1.6) < 0.05).sum() > 10
    # and the depth in the photo's lower half is the ground plane
    lat = np.pi / 2 - np.pi * (np.arange(256) + 0.5) / 256
    rows = (lat < -np.radians(15)) & (lat > -np.radians(25))
    ground = 1.6 / np.sin(-lat[rows])
    assert np.allclose(depth.depth[rows, 256], ground, rtol=0.02)


def test_bad_photo_options_fail_before_anything_is_written(tmp_path, capsys):
    # Found as a new user: --set panorama.width=abc and panorama.blur_deg=nan were TypeError
    # tracebacks; a negative feather was taken. Now one line, exit 2, and no file in the run folder.
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(photo)
    for opt, words in (
        ("panorama.width=abc", "even number of pixels"),
        ("panorama.blur_deg=nan", "blur_deg"),
        ("panorama.feather_deg=-3", "feather_deg"),
        ("panorama.top_sky_share=0", "top_sky_share"),
        ("panorama.top_sky_share=nan", "top_sky_share"),
    ):
        out = tmp_path / opt.replace("=", "_")
        code = main(["generate", "--image", str(photo), "-o", str(out), "--until", "panorama", "-q", "--set", opt])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1, (opt, err)
        assert not any(out.glob("*")), opt


def test_a_heic_photo_fails_in_one_line_naming_the_conversion(tmp_path, capsys):
    # Found as a new user: a phone's HEIC photo was reported as a corrupt file.
    photo = tmp_path / "IMG_0001.heic"
    photo.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(256))
    out = tmp_path / "run"
    code = main(["generate", "--image", str(photo), "-o", str(out), "--preset", "fast", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "HEIC" in err and "heif-convert" in err, err
    assert not any(out.glob("*"))


def test_a_forest_photo_is_outdoors_with_the_sky_of_its_top_edge_above_it():
    # procedural forest 0 cut as a 90° photo: dark crowns along the top edge with blue sky between
    # them. The backdrop above the photo used to fade from the band's mean (mostly crowns) to a grey
    # zenith over a ring of crowns: a room. It now continues the photo's own blue sky
    from worldgen.depth.sky import is_indoor, sky_mask
    from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize

    spec, _ = parse_prompt("a forest", 0)
    pano, _, _ = synthesize(spec, 1.6, ProceduralConfig(width=512, antialias=False, previews=False))
    photo = equirect_to_perspective(pano.image, Camera.perspective(320, 240, 90.0), "bilinear")
    photo = (np.clip(photo, 0, 1) * 255).round().astype(np.uint8)
    world, _, _ = photo_panorama(photo, 90.0, PhotoConfig(width=512))
    zenith = world.image[0].mean(0)
    assert zenith[2] > zenith[0] + 0.1  # blue
    assert not is_indoor(world, sky_mask(world))[0]
    before, _, _ = photo_panorama(photo, 90.0, PhotoConfig(width=512, top_sky_share=2.0))
    assert is_indoor(before, sky_mask(before))[0]  # the band's mean, as before: a room
