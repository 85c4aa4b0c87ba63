"""Photo field of view (EXIF, --fov, default), upright reading and placement in the equirect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from worldgen.errors import InputError
from worldgen.geometry import equirect_directions
from worldgen.geometry.photo import DEFAULT_35MM_FOCAL, photo_fov, place_photo, read_photo


def _jpeg(path, size=(40, 30), orientation=None, **exif_ifd):
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    ifd = exif.get_ifd(0x8769)
    for tag, value in exif_ifd.items():
        ifd[
            {"f35": 0xA405, "focal": 0x920A, "xres": 0xA20E, "unit": 0xA210, "exif_w": 0xA002, "exif_h": 0xA003}[tag]
        ] = value
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:, : size[0] // 2, 0] = 255  # left half red
    Image.fromarray(img).save(path, exif=exif)
    return path


def test_fov_sources(tmp_path):
    assert photo_fov(_jpeg(tmp_path / "a.jpg", f35=26), 75.0) == (75.0, "--fov")
    fov, how = photo_fov(_jpeg(tmp_path / "b.jpg", size=(36, 24), f35=18))
    # a 3:2 landscape frame is 36 mm wide in 35 mm terms: 2 atan(18/18) = 90°
    assert how == "exif-35mm" and fov == pytest.approx(90.0, abs=1e-6)
    # a phone: 4 mm lens, 1 µm pixels (1000 px/mm) on a 4000 px wide original, this file 40 px wide
    fov, how = photo_fov(_jpeg(tmp_path / "c.jpg", size=(40, 30), focal=4.0, xres=1000.0, unit=4, exif_w=4000))
    assert how == "exif-focal+sensor" and fov == pytest.approx(math.degrees(2 * math.atan(20 / 40)))
    # the same resolution for an original twice as wide (8000 px): pixels are twice as big here
    fov, _ = photo_fov(_jpeg(tmp_path / "c2.jpg", size=(40, 30), focal=4.0, xres=1000.0, unit=4, exif_w=8000))
    assert fov == pytest.approx(90.0)
    fov, how = photo_fov(_jpeg(tmp_path / "d.jpg", size=(36, 24)))
    assert how == "default" and fov == pytest.approx(math.degrees(2 * math.atan(18 / DEFAULT_35MM_FOCAL)))
    with pytest.raises(InputError, match="--fov"):
        photo_fov(tmp_path / "d.jpg", 200.0)


def test_implausible_exif_is_skipped_with_a_note(tmp_path):
    notes = []
    # 65535 mm (a 0.04° view) is no lens: the focal length and sensor come next
    p = _jpeg(tmp_path / "a.jpg", size=(40, 30), f35=65535, focal=4.0, xres=1000.0, unit=4, exif_w=4000)
    fov, how = photo_fov(p, notes=notes)
    assert how == "exif-focal+sensor" and fov == pytest.approx(53.13, abs=0.01)
    assert len(notes) == 1 and "65535" in notes[0] and "ignored" in notes[0]
    # a focal plane resolution 1000x too fine (a 0.0006° view): the default
    notes.clear()
    fov, how = photo_fov(_jpeg(tmp_path / "b.jpg", size=(40, 30), focal=4.0, xres=1e6, unit=4), notes=notes)
    assert how == "default" and len(notes) == 1
    # a 4:1 strip is no camera frame; a 2:1 one may be a 360° panorama given as a photo
    notes.clear()
    photo_fov(_jpeg(tmp_path / "w.jpg", size=(80, 20)), notes=notes)
    assert len(notes) == 1 and "--fov" in notes[0]
    notes.clear()
    photo_fov(_jpeg(tmp_path / "e.jpg", size=(80, 40)), notes=notes)
    assert len(notes) == 1 and "--panorama" in notes[0]
    notes.clear()
    photo_fov(_jpeg(tmp_path / "f.jpg", size=(64, 30), f35=26), notes=notes)
    assert notes == []  # 2.13:1, a 19.5:9 phone frame: nothing to say


def test_focal_plane_resolution_needs_the_cameras_image_width(tmp_path):
    # Found on a real Lightroom export (Pillow's Tests/images/xmp_test.jpg: a Canon EOS Rebel T6,
    # 25 mm, 5184 px frame exported at 2000 px without PixelXDimension): the focal plane
    # resolution counts the camera's pixels, so this file's width says nothing about the sensor.
    # It was read as a 2.6x narrower view (20° instead of ~48°); it is now skipped with a note.
    notes = []
    p = _jpeg(tmp_path / "lr.jpg", size=(200, 107), focal=25.0, xres=5728.18, unit=2)
    fov, how = photo_fov(p, notes=notes)
    assert how == "default" and len(notes) == 1 and "PixelXDimension" in notes[0]
    # an unknown unit (9) or a garbage one (text) is said, not silently dropped, and never crashes
    notes.clear()
    fov, how = photo_fov(_jpeg(tmp_path / "u.jpg", focal=4.0, xres=1000.0, unit=9, exif_w=4000), notes=notes)
    assert how == "default" and len(notes) == 1 and "Unit" in notes[0]
    notes.clear()
    fov, how = photo_fov(_jpeg(tmp_path / "t.jpg", focal=4.0, xres=1000.0, unit="mm", exif_w=4000), notes=notes)
    assert how == "default" and len(notes) == 1
    # pixels turned by 90° by an editor (portrait file, landscape PixelX/YDimension, no orientation
    # tag): the file's width is the camera's height, 3000 px of 1 µm: 2 atan(1.5 / 4)
    p = _jpeg(tmp_path / "p.jpg", size=(30, 40), focal=4.0, xres=1000.0, unit=4, exif_w=4000, exif_h=3000)
    fov, how = photo_fov(p)
    assert how == "exif-focal+sensor" and fov == pytest.approx(math.degrees(2 * math.atan(1.5 / 4)))


def test_orientation_is_applied(tmp_path):
    p = _jpeg(tmp_path / "r.jpg", size=(36, 24), orientation=6, f35=18)
    rgb = read_photo(p)
    assert rgb.shape == (36, 24, 3)  # rotated upright: now portrait
    assert rgb[0, :, 0].mean() > 200 and rgb[-1, :, 0].mean() < 50  # the red left half is now on top
    fov, _ = photo_fov(p)  # across the upright (portrait) width: 24 mm
    assert fov == pytest.approx(math.degrees(2 * math.atan(12 / 18)), abs=1e-6)


def test_read_photo_takes_what_panoramas_take(tmp_path):
    from PIL import Image

    # a 16-bit greyscale PNG (a scan, a render) was refused; it is rounded to 8 bits like a panorama
    ramp = (np.arange(32 * 24, dtype=np.uint16).reshape(24, 32) * 80).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    rgb = read_photo(tmp_path / "g16.png")
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], np.rint(ramp / 257.0).astype(np.uint8))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_photo(tmp_path / "empty.jpg")


def test_read_photo_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_photo(tmp_path / "none.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="corrupt or not an image"):
        read_photo(tmp_path / "bad.jpg")


def test_phone_formats_pillow_cannot_decode_are_named_with_the_fix(tmp_path):
    # Found as a new user: an iPhone's HEIC photo (made with Debian's heif-enc) and a JPEG XL image
    # were "corrupt or not an image". They are images this install cannot decode: say which, and how
    # to convert them. Only the first bytes matter (Pillow refuses the rest either way).
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(
        InputError, match=r"IMG_0001.HEIC is a HEIC/HEIF photo.*heif-convert IMG_0001.HEIC IMG_0001.jpg"
    ):
        read_photo(heic)
    other = tmp_path / "phone.heif"  # major brand mif1, heic among the compatible brands
    other.write_bytes(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf" + bytes(64))
    with pytest.raises(InputError, match="HEIC/HEIF"):
        read_photo(other)
    for name, head in (("a.jxl", b"\xff\x0a"), ("b.jxl", b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a")):
        (tmp_path / name).write_bytes(head + bytes(64))
        with pytest.raises(InputError, match=f"{name} is a JPEG XL image.*djxl {name}"):
            read_photo(tmp_path / name)


def test_place_photo_centre_extent_and_handedness():
    h, w = 60, 90
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2, 0] = 255  # left half red
    img[: h // 2, :, 2] = 255  # top half blue
    width = 256
    pano, cov = place_photo(img, 90.0, width)
    assert pano.shape == (128, 256, 3) and pano.dtype == np.uint8 and cov.shape == (128, 256)
    dirs = equirect_directions(128)
    lon = np.arctan2(dirs[..., 0], -dirs[..., 2])
    lat = np.arcsin(dirs[..., 1])
    # horizontal extent on the horizon row: +-45°; vertical: atan(tan45° * 60/90) = 33.7°
    row = 64
    assert np.abs(lon[row][cov[row]]).max() == pytest.approx(math.radians(45), abs=2 * math.pi / width)
    col = 128
    vmax = math.atan(math.tan(math.radians(45)) * h / w)
    assert np.abs(lat[:, col][cov[:, col]]).max() == pytest.approx(vmax, abs=math.pi / 128)
    # left of centre (lon < 0, towards -X) is red; above the horizon is blue
    left = cov & (lon < -0.1) & (np.abs(lat) < 0.3)
    right = cov & (lon > 0.1) & (np.abs(lat) < 0.3)
    assert pano[left, 0].mean() > 200 and pano[right, 0].mean() < 50
    assert pano[cov & (lat > 0.1), 2].mean() > 200 and pano[cov & (lat < -0.1), 2].mean() < 50
    assert not pano[~cov].any()


def test_place_photo_reduces_large_photos_without_aliasing():
    # a fine checkerboard averages to grey instead of aliasing into stripes
    yy, xx = np.mgrid[:600, :800]
    img = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    pano, cov = place_photo(img.astype(np.float32) / 255, 60.0, 128)
    assert pano.dtype == np.float32
    inner = cov & np.roll(cov, 2, 0) & np.roll(cov, -2, 0) & np.roll(cov, 2, 1) & np.roll(cov, -2, 1)
    assert abs(float(pano[inner].mean()) - 0.5) < 0.05 and float(pano[inner].std()) < 0.1


def test_fit_photo_reduces_in_uint8_and_never_enlarges():
    from worldgen.geometry.photo import fit_photo

    big = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    small = fit_photo(big, 60.0, 512)  # 800 px across 60° in a panorama of 512 px / 360°: ~85 px
    assert small.dtype == np.uint8 and small.shape[1] < 120 and abs(small.shape[1] / small.shape[0] - 4 / 3) < 0.05
    assert fit_photo(big, 60.0, 16384) is big  # already coarser than the panorama: as it is
    as_float = fit_photo(big.astype(np.float32) / 255, 60.0, 512)
    assert as_float.dtype == np.float32 and np.abs(as_float * 255 - small).max() < 0.01


def test_multi_frame_photos_say_the_first_frame_is_used(tmp_path):
    # Found as a new user: an animated WebP/GIF or a multi-page TIFF gave its first frame silently, and
    # a photo's conversion notes (CMYK, 16-bit...) never reached the user.
    img = Image.fromarray(np.full((30, 40, 3), 90, np.uint8))
    img.save(tmp_path / "a.webp", save_all=True, append_images=[img.rotate(10), img.rotate(20)])
    notes: list[str] = []
    assert read_photo(tmp_path / "a.webp", notes).shape == (30, 40, 3)
    assert any("3 frames or pages; the first is used" in n for n in notes), notes
    Image.fromarray(np.full((30, 40, 4), 90, np.uint8)).save(tmp_path / "b.png")
    notes = []
    read_photo(tmp_path / "b.png", notes)
    assert any("alpha dropped" in n for n in notes), notes
