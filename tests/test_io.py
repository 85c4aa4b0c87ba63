import errno
import zipfile

import numpy as np
import pytest

from worldgen import InputError, OutputError
from worldgen.io import (
    TMP_PREFIX,
    arrays_from_bytes,
    arrays_to_bytes,
    atomic_write,
    encode_png,
    read_depth,
    read_image,
    safe_join,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a" / "f.bin"
    atomic_write(p, b"one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert not list(tmp_path.rglob(f"{TMP_PREFIX}*"))


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    atomic_write(p, b"old")
    import worldgen.io as wio

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wio.os, "replace", boom)
    with pytest.raises(OutputError, match="disk is full: could not write f.bin"):
        atomic_write(p, b"new")
    assert p.read_bytes() == b"old"
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))


def test_safe_join_refuses_escape(tmp_path):
    assert safe_join(tmp_path, "x/y.png") == (tmp_path / "x/y.png").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(OutputError, match="escapes"):
            safe_join(tmp_path, bad)


def test_arrays_roundtrip_and_determinism(rng):
    arrays = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": np.arange(5, dtype=np.int32)}
    b1 = arrays_to_bytes(arrays, {"k": [1, 2]})
    b2 = arrays_to_bytes({k: v.copy() for k, v in arrays.items()}, {"k": [1, 2]})
    assert b1 == b2
    back, meta = arrays_from_bytes(b1)
    assert meta == {"k": [1, 2]}
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert {i.date_time for i in zipfile.ZipFile(__import__("io").BytesIO(b1)).infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_arrays_corrupt():
    with pytest.raises(InputError, match="corrupt"):
        arrays_from_bytes(b"not a zip")


def test_read_image(tmp_path, rng):
    img = rng.integers(0, 256, (4, 8, 3), dtype=np.uint8)
    (tmp_path / "p.png").write_bytes(encode_png(img))
    assert np.array_equal(read_image(tmp_path / "p.png"), img)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="corrupt"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_read_depth_formats(tmp_path):
    d = np.array([[1.0, 2.5], [0.0, 10.0]], np.float32)
    np.save(tmp_path / "d.npy", d)
    assert np.array_equal(read_depth(tmp_path / "d.npy"), d)
    (tmp_path / "d.png").write_bytes(encode_png((d * 1000).astype(np.uint16)))
    assert np.allclose(read_depth(tmp_path / "d.png"), d)
    import OpenEXR

    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": d}) as f:
        f.write(str(tmp_path / "d.exr"))
    assert np.allclose(read_depth(tmp_path / "d.exr"), d)
    (tmp_path / "d8.png").write_bytes(encode_png(np.zeros((2, 2), np.uint8)))
    with pytest.raises(InputError, match="16-bit"):
        read_depth(tmp_path / "d8.png")
    (tmp_path / "d.txt").write_text("1")
    with pytest.raises(InputError, match="unknown depth format"):
        read_depth(tmp_path / "d.txt")
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt"):
        read_depth(tmp_path / "bad.npy")


def test_atomic_write_permissions_follow_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_read_hdr_decodes_runs_literals_and_flat_scanlines(tmp_path):
    from worldgen.io import read_hdr

    head = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 8\n"
    # row 0, run-length encoded: R a run of 8 x 128, G literals, B a run of 3 then 5 literals, E a run of 8 x 129
    g = bytes(range(8))
    row0 = bytes([2, 2, 0, 8, 136, 128, 8]) + g + bytes([131, 64, 5, 1, 2, 3, 4, 5, 136, 129])
    row1 = bytes([10, 20, 30, 128] * 8)  # a flat scanline: RGBE per pixel
    (tmp_path / "t.hdr").write_bytes(head + row0 + row1)
    img = read_hdr(tmp_path / "t.hdr")
    assert img.shape == (2, 8, 3) and img.dtype == np.float32
    scale = 2.0 ** (129 - 136)
    assert np.allclose(img[0, :, 0], 128.5 * scale)
    assert np.allclose(img[0, :, 1], (np.arange(8) + 0.5) * scale)
    assert np.allclose(img[0, :, 2], (np.array([64, 64, 64, 1, 2, 3, 4, 5]) + 0.5) * scale)
    assert np.allclose(img[1], (np.array([10, 20, 30]) + 0.5) * 2.0**-8)


@pytest.mark.parametrize(
    "body, words",
    [
        (b"#?RADIANCE\nFORMAT=32-bit_rle_xyze\n\n-Y 1 +X 8\n" + bytes(32), "xyze"),
        (b"#?RADIANCE\n\n+Y 1 +X 8\n" + bytes(32), "orientation"),
        (b"#?RADIANCE\n\n-Y 1 +X 8\n" + bytes([2, 2, 0, 8, 0]), "truncated"),
    ],
)
def test_read_hdr_refuses_in_one_line(tmp_path, body, words):
    from worldgen.io import read_hdr

    (tmp_path / "bad.hdr").write_bytes(body)
    with pytest.raises(InputError, match=words) as e:
        read_hdr(tmp_path / "bad.hdr")
    assert "\n" not in str(e.value)
