"""Photo Sphere (GPano) metadata: where a partial panorama lies in the sphere, and putting it there."""

from __future__ import annotations

import numpy as np
import pytest
from _gpano import NS, gpano_xmp, save_with_xmp
from PIL import Image

from worldgen.errors import InputError
from worldgen.geometry.gpano import PanoCrop, crop_summary, pano_crop, place_crop, read_pano_crop


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tif"])
@pytest.mark.parametrize("elements", [False, True])
def test_the_crop_is_read_from_every_format_and_both_ways_of_writing_it(tmp_path, fmt, elements):
    path = tmp_path / f"sphere.{fmt}"
    save_with_xmp(path, np.zeros((90, 400, 3), np.uint8), gpano_xmp(elements=elements, prefix="GPano"))
    assert read_pano_crop(path) == PanoCrop(400, 200, 0, 50, 400, 90)


def test_any_prefix_bound_to_the_namespace_and_decimal_values_are_read():
    xmp = gpano_xmp(full=(4096.0, 2048.0), top=512.0, size=(4096, 1024), prefix="ns1")
    assert pano_crop(xmp, "p.jpg") == PanoCrop(4096, 2048, 0, 512, 4096, 1024)


def test_no_metadata_or_another_namespace_is_no_crop(tmp_path):
    path = tmp_path / "plain.jpg"
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(path)
    assert read_pano_crop(path) is None
    assert pano_crop(None, "x") is None
    assert pano_crop('<x:xmpmeta><rdf:Description xmp:Rating="5"/></x:xmpmeta>', "x") is None
    # the namespace with no crop fields (only a heading): nothing to place
    assert pano_crop(f'<rdf:Description xmlns:GPano="{NS}" GPano:PoseHeadingDegrees="90"/>', "x") is None


@pytest.mark.parametrize(
    "xmp, words",
    [
        (gpano_xmp(projection="cylindrical"), ("'cylindrical' projection", "equirectangular")),
        (gpano_xmp(full=(400, 300)), ("400x300", "not 2:1")),
        (gpano_xmp(top=150, size=(400, 90)), ("does not fit",)),
        (gpano_xmp(size=(0, 90)), ("does not fit",)),
        (gpano_xmp().replace('GPano:CroppedAreaTopPixels="50"', ""), ("CroppedAreaTopPixels is missing",)),
        (gpano_xmp().replace('CroppedAreaTopPixels="50"', 'CroppedAreaTopPixels="top"'), ("'top'", "whole number")),
    ],
)
def test_unusable_metadata_is_refused_in_one_line(xmp, words):
    with pytest.raises(InputError) as e:
        pano_crop(xmp, "sphere.jpg")
    msg = str(e.value)
    assert "sphere.jpg" in msg and "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_the_crop_lands_where_the_metadata_says_and_wraps_round_the_sphere():
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)
    # 120° of longitude from column 330, across longitude +180° (the right edge), rows 40..129
    cols = np.arange(330, 330 + 134) % 400
    part = full[40:130][:, cols]
    placed, covered = place_crop(part, PanoCrop(400, 200, 330, 40, 134, 90), 400)
    assert covered.sum() == 90 * 134 and covered[40:130][:, cols].all()
    assert np.array_equal(placed[covered], full[covered])
    assert not placed[~covered].any()


def test_an_image_resized_since_capture_keeps_its_place():
    # the metadata speaks of the original 400-wide crop; the file was halved since
    rgb = np.full((45, 200, 3), 200, np.uint8)
    placed, covered = place_crop(rgb, PanoCrop(400, 200, 0, 50, 400, 90), 200)
    rows = np.nonzero(covered.any(1))[0]
    assert covered.shape == (100, 200) and (rows[0], rows[-1]) == (25, 69) and covered[25:70].all()
    assert (placed[covered] == 200).all()


def test_the_summary_says_how_much_of_the_sphere_was_seen():
    assert crop_summary(PanoCrop(400, 200, 0, 50, 400, 90)) == ("360° x 81° of the sphere (latitude +45° to -36°)")
