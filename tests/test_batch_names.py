"""Job names -> folder names: nothing can leave the batch root."""

from __future__ import annotations

import pytest

from worldgen.batch.names import MAX_LEN, folder_name
from worldgen.io import safe_join


@pytest.mark.parametrize(
    "name, folder",
    [
        ("forest", "forest"),
        ("forest #2", "forest_2"),
        ("../../etc/passwd", "etc_passwd"),
        ("/abs/path", "abs_path"),
        ("..\\..\\win", "win"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Ünïcode név", "Unicode_nev"),
        ("a/../b", "a_b"),
    ],
)
def test_folder_name_is_one_plain_component(name, folder, tmp_path):
    got = folder_name(name)
    assert got == folder
    assert safe_join(tmp_path, got).parent == tmp_path.resolve()


@pytest.mark.parametrize("name", ["", "...", "../..", "/", "\u00a0", "batch.json", "INDEX.html"])
def test_unusable_names_are_refused(name):
    with pytest.raises(ValueError):
        folder_name(name)


def test_nul_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        folder_name("a\x00b")


def test_long_names_are_cut_and_stay_apart():
    a, b = "x" * 500 + "a", "x" * 500 + "b"
    fa, fb = folder_name(a), folder_name(b)
    assert len(fa) <= MAX_LEN and len(fb) <= MAX_LEN
    assert fa != fb
