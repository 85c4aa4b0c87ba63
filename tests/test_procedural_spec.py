"""Prompt parsing, SceneSpec JSON round trip and bad-spec errors (worldgen.procedural.spec)."""

from __future__ import annotations

import json

import pytest

from worldgen.errors import InputError
from worldgen.procedural import SceneSpec, explain, load_spec, parse_prompt, spec_to_bytes


@pytest.mark.parametrize(
    "prompt, setting",
    [
        ("snowy mountains at sunset", "mountains"),
        ("a pine forest by a lake", "forest"),
        ("a desert canyon at noon", "canyon"),
        ("sand dunes", "desert"),
        ("a quiet beach", "coast"),
        ("rolling hills", "meadow"),
        ("a city street at night", "city"),
        ("a small village", "village"),
        ("a cozy wooden cabin interior", "interior"),
        ("a lake", "lake"),
    ],
)
def test_settings(prompt: str, setting: str) -> None:
    spec, lines = parse_prompt(prompt, 0)
    assert spec.setting == setting
    assert lines


def test_time_weather_and_objects() -> None:
    spec, _ = parse_prompt("misty pine forest at dawn in autumn", 1)
    assert (spec.time_of_day, spec.weather, spec.season) == ("dawn", "fog", "autumn")
    assert spec.objects["pine"] >= 1.0
    spec, _ = parse_prompt("snowy mountains at sunset", 0)
    assert spec.snow_cover and spec.time_of_day == "sunset"
    spec, _ = parse_prompt("a pine forest by a lake", 0)
    assert spec.water == "lake"
    spec, _ = parse_prompt("rainy city street with lamps", 0)
    assert spec.weather == "rain" and spec.objects["lamp"] >= 1.0


def test_unknown_words_fall_back() -> None:
    spec, lines = parse_prompt("xyzzy flurble quux", 5)
    assert spec.setting == "meadow"
    text = "\n".join(lines)
    assert "'xyzzy'" in text and "not understood" in text and "default meadow" in text
    assert "not understood" in explain("xyzzy", 0)


def test_interior_has_furniture_only() -> None:
    spec, _ = parse_prompt("a cozy wooden cabin interior with a pine table", 0)
    assert spec.setting == "interior" and spec.warm_light and spec.interior_style == "wood"
    assert "fireplace" in spec.objects and "pine" not in spec.objects and "house" not in spec.objects


def test_json_round_trip(tmp_path) -> None:
    spec, _ = parse_prompt("a village with fences at dusk", 42)
    data = json.loads(spec_to_bytes(spec))
    assert SceneSpec.from_json(data) == spec
    path = tmp_path / "scene_spec.json"
    path.write_bytes(spec_to_bytes(spec))
    assert load_spec(path) == spec
    assert spec_to_bytes(load_spec(path)) == spec_to_bytes(spec)


@pytest.mark.parametrize(
    "edit, word",
    [
        ({"setting": "moon"}, "setting"),
        ({"seed": -1}, "seed"),
        ({"relief": "high"}, "relief"),
        ({"objects": {"dragon": 1}}, "object kind"),
        ({"objects": {"pine": 9}}, "pine"),
        ({"colour": "red"}, "unknown field"),
        ({"snow_cover": "yes"}, "snow_cover"),
        ({"version": 7}, "version"),
    ],
)
def test_bad_spec_one_line_error(tmp_path, edit: dict, word: str) -> None:
    spec, _ = parse_prompt("forest", 0)
    data = spec.to_json()
    data.update(edit)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert word in str(e.value) and "\n" not in str(e.value)


def test_unreadable_spec(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_spec(tmp_path / "missing.json")
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_spec(p)
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_spec(p)


def test_seed_is_kept_and_varies_sun() -> None:
    a, _ = parse_prompt("meadow", 1)
    b, _ = parse_prompt("meadow", 2)
    assert a.seed == 1 and b.seed == 2 and a != b


def test_room_words_and_autumn_shape_objects() -> None:
    spec, lines = parse_prompt("a bedroom at noon", 0)
    assert spec.setting == "interior" and spec.objects.get("bed", 0) >= 1.0
    assert any("bed" in line and "bedroom" in line for line in lines)
    autumn, _ = parse_prompt("an autumn forest", 0)
    summer, _ = parse_prompt("a forest", 0)
    assert autumn.objects["broadleaf"] > summer.objects["broadleaf"]
    assert autumn.objects["pine"] < summer.objects["pine"]
    named, _ = parse_prompt("an autumn forest of pines", 0)
    assert named.objects["pine"] >= 1.0  # pines the prompt asks for stay


@pytest.mark.parametrize(
    "prompt,setting,phrase",
    [
        ("a village on green hills at noon", "village", "more specific"),
        ("green hills with a small village", "village", "more specific"),
        ("a lake by a city street", "city", "keeping the lake"),
        ("a forest village", "village", "more specific"),
    ],
)
def test_more_specific_setting_wins_regardless_of_order(prompt, setting, phrase):
    spec, lines = parse_prompt(prompt, 0)
    assert spec.setting == setting
    assert any(phrase in line for line in lines)


def test_landscape_word_shapes_settlement_terrain():
    flat, _ = parse_prompt("a village", 0)
    hilly, _ = parse_prompt("a village in the hills", 0)
    assert hilly.relief >= flat.relief
