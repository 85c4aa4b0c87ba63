"""Prompt -> SceneSpec: a small, documented, editable description of a procedural world.

A :class:`SceneSpec` is everything the scene builder needs; it is saved as ``scene_spec.json``
next to the panorama and can be edited and fed back with ``--spec FILE``. :func:`parse_prompt`
reads a free-text prompt word by word against a fixed vocabulary (no model, no weights). Every
word is either understood, ignored as a common word, or reported as unknown; unknown words never
fail, and whatever the prompt leaves open falls back to a default chosen for the setting.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

SPEC_VERSION = 1

SETTINGS: tuple[str, ...] = (
    "forest",
    "mountains",
    "desert",
    "canyon",
    "lake",
    "coast",
    "meadow",
    "city",
    "village",
    "interior",
)
"""Settings the scene builder knows. ``lake`` and ``coast`` are land settings with water."""

TIMES: dict[str, float] = {
    "dawn": 6.0,
    "morning": 9.0,
    "noon": 12.5,
    "afternoon": 15.5,
    "sunset": 18.6,
    "dusk": 19.4,
    "night": 23.0,
}
"""Named times of day and their clock hour (local solar time)."""

WEATHERS: tuple[str, ...] = ("clear", "cloudy", "overcast", "fog", "rain", "snow")
SEASONS: tuple[str, ...] = ("spring", "summer", "autumn", "winter")

OBJECT_KINDS: tuple[str, ...] = (
    "pine",
    "broadleaf",
    "palm",
    "cactus",
    "bush",
    "rock",
    "building",
    "house",
    "tower",
    "lamp",
    "fence",
    "table",
    "chair",
    "bed",
    "sofa",
    "bookshelf",
    "fireplace",
    "rug",
)
"""Object kinds the scene builder can place. Amounts are density multipliers (1 = the setting's
usual density, 0 = none, up to 5)."""

INTERIOR_OBJECTS = frozenset({"table", "chair", "bed", "sofa", "bookshelf", "fireplace", "rug", "lamp"})

# Default objects and amounts per setting.
_SETTING_OBJECTS: dict[str, dict[str, float]] = {
    "forest": {"pine": 1.0, "broadleaf": 0.6, "rock": 0.5, "bush": 0.6},
    "mountains": {"pine": 0.5, "rock": 1.0},
    "desert": {"rock": 0.6, "cactus": 0.6, "bush": 0.3},
    "canyon": {"rock": 1.0, "bush": 0.3},
    "lake": {"pine": 0.7, "broadleaf": 0.5, "rock": 0.6, "bush": 0.4},
    "coast": {"rock": 0.8, "palm": 0.4, "bush": 0.4},
    "meadow": {"broadleaf": 0.5, "bush": 0.6, "rock": 0.3},
    "city": {"building": 1.0, "lamp": 1.0, "broadleaf": 0.3},
    "village": {"house": 1.0, "fence": 1.0, "broadleaf": 0.6, "lamp": 0.3, "bush": 0.4},
    "interior": {"table": 1.0, "chair": 1.0, "sofa": 1.0, "bookshelf": 1.0, "rug": 1.0, "lamp": 1.0},
}

# Furniture a room word brings along (amounts as in SceneSpec.objects).
_ROOM_OBJECTS: dict[str, dict[str, float]] = {
    "bedroom": {"bed": 1.0},
    "library": {"bookshelf": 2.0},
    "study": {"bookshelf": 1.5},
    "kitchen": {"table": 1.0, "chair": 1.0},
    "dining": {"table": 1.0, "chair": 1.0},
    "living": {"sofa": 1.0},
    "lounge": {"sofa": 1.0},
}

_SETTING_WORDS: dict[str, str] = {
    "forest": "forest",
    "woods": "forest",
    "woodland": "forest",
    "jungle": "forest",
    "taiga": "forest",
    "grove": "forest",
    "rainforest": "forest",
    "mountain": "mountains",
    "mountains": "mountains",
    "alps": "mountains",
    "alpine": "mountains",
    "peak": "mountains",
    "peaks": "mountains",
    "summit": "mountains",
    "glacier": "mountains",
    "ridge": "mountains",
    "valley": "mountains",
    "desert": "desert",
    "dune": "desert",
    "dunes": "desert",
    "sand": "desert",
    "sahara": "desert",
    "oasis": "desert",
    "canyon": "canyon",
    "mesa": "canyon",
    "gorge": "canyon",
    "badlands": "canyon",
    "butte": "canyon",
    "lake": "lake",
    "pond": "lake",
    "lakeside": "lake",
    "river": "lake",
    "fjord": "lake",
    "sea": "coast",
    "ocean": "coast",
    "coast": "coast",
    "beach": "coast",
    "shore": "coast",
    "coastal": "coast",
    "bay": "coast",
    "island": "coast",
    "cliff": "coast",
    "cliffs": "coast",
    "seaside": "coast",
    "meadow": "meadow",
    "hill": "meadow",
    "hills": "meadow",
    "field": "meadow",
    "fields": "meadow",
    "grassland": "meadow",
    "prairie": "meadow",
    "plain": "meadow",
    "plains": "meadow",
    "countryside": "meadow",
    "park": "meadow",
    "garden": "meadow",
    "pasture": "meadow",
    "city": "city",
    "street": "city",
    "downtown": "city",
    "urban": "city",
    "avenue": "city",
    "metropolis": "city",
    "road": "city",
    "alley": "city",
    "skyscraper": "city",
    "town": "village",
    "village": "village",
    "hamlet": "village",
    "farm": "village",
    "cottages": "village",
    "interior": "interior",
    "room": "interior",
    "indoor": "interior",
    "indoors": "interior",
    "inside": "interior",
    "bedroom": "interior",
    "kitchen": "interior",
    "library": "interior",
    "hall": "interior",
    "office": "interior",
    "lounge": "interior",
    "livingroom": "interior",
    "attic": "interior",
    "studio": "interior",
}

_TIME_WORDS: dict[str, str] = {
    "dawn": "dawn",
    "sunrise": "dawn",
    "daybreak": "dawn",
    "morning": "morning",
    "noon": "noon",
    "midday": "noon",
    "day": "noon",
    "daytime": "noon",
    "afternoon": "afternoon",
    "sunset": "sunset",
    "golden": "sunset",
    "evening": "sunset",
    "dusk": "dusk",
    "twilight": "dusk",
    "night": "night",
    "midnight": "night",
    "nighttime": "night",
    "moonlight": "night",
    "moonlit": "night",
    "starry": "night",
    "stars": "night",
    "dark": "night",
}

_WEATHER_WORDS: dict[str, str] = {
    "clear": "clear",
    "sunny": "clear",
    "bright": "clear",
    "cloudy": "cloudy",
    "clouds": "cloudy",
    "cloud": "cloudy",
    "overcast": "overcast",
    "grey": "overcast",
    "gray": "overcast",
    "gloomy": "overcast",
    "stormy": "overcast",
    "storm": "overcast",
    "fog": "fog",
    "foggy": "fog",
    "mist": "fog",
    "misty": "fog",
    "haze": "fog",
    "hazy": "fog",
    "rain": "rain",
    "rainy": "rain",
    "raining": "rain",
    "drizzle": "rain",
    "wet": "rain",
    "snowfall": "snow",
    "blizzard": "snow",
    "snowing": "snow",
}

_SEASON_WORDS: dict[str, str] = {
    "spring": "spring",
    "blossom": "spring",
    "summer": "summer",
    "autumn": "autumn",
    "fall": "autumn",
    "autumnal": "autumn",
    "winter": "winter",
    "wintry": "winter",
    "frozen": "winter",
    "icy": "winter",
}

_SNOW_WORDS = frozenset(
    {"snow", "snowy", "snowcapped", "winter", "frozen", "icy", "glacier", "blizzard", "snowfall", "snowing", "wintry"}
)

_OBJECT_WORDS: dict[str, str] = {
    "pine": "pine",
    "pines": "pine",
    "fir": "pine",
    "spruce": "pine",
    "conifer": "pine",
    "conifers": "pine",
    "evergreen": "pine",
    "cedar": "pine",
    "tree": "broadleaf",
    "trees": "broadleaf",
    "oak": "broadleaf",
    "oaks": "broadleaf",
    "birch": "broadleaf",
    "maple": "broadleaf",
    "willow": "broadleaf",
    "elm": "broadleaf",
    "deciduous": "broadleaf",
    "orchard": "broadleaf",
    "palm": "palm",
    "palms": "palm",
    "tropical": "palm",
    "cactus": "cactus",
    "cacti": "cactus",
    "bush": "bush",
    "bushes": "bush",
    "shrub": "bush",
    "shrubs": "bush",
    "hedge": "bush",
    "flowers": "bush",
    "flower": "bush",
    "rock": "rock",
    "rocks": "rock",
    "rocky": "rock",
    "boulder": "rock",
    "boulders": "rock",
    "stone": "rock",
    "stones": "rock",
    "building": "building",
    "buildings": "building",
    "skyscrapers": "building",
    "skyscraper": "building",
    "tower": "tower",
    "towers": "tower",
    "lighthouse": "tower",
    "castle": "tower",
    "church": "tower",
    "house": "house",
    "houses": "house",
    "cottage": "house",
    "cottages": "house",
    "cabin": "house",
    "hut": "house",
    "barn": "house",
    "home": "house",
    "homes": "house",
    "lamp": "lamp",
    "lamps": "lamp",
    "streetlight": "lamp",
    "streetlights": "lamp",
    "lantern": "lamp",
    "lanterns": "lamp",
    "lights": "lamp",
    "fence": "fence",
    "fences": "fence",
    "wall": "fence",
    "table": "table",
    "tables": "table",
    "desk": "table",
    "chair": "chair",
    "chairs": "chair",
    "bed": "bed",
    "sofa": "sofa",
    "couch": "sofa",
    "armchair": "sofa",
    "bookshelf": "bookshelf",
    "bookshelves": "bookshelf",
    "books": "bookshelf",
    "shelf": "bookshelf",
    "shelves": "bookshelf",
    "fireplace": "fireplace",
    "hearth": "fireplace",
    "fire": "fireplace",
    "rug": "rug",
    "carpet": "rug",
}

_AMOUNT_WORDS: dict[str, float] = {
    "dense": 2.0,
    "thick": 2.0,
    "lush": 1.6,
    "many": 1.8,
    "lots": 1.8,
    "crowded": 2.0,
    "busy": 1.8,
    "sparse": 0.4,
    "few": 0.4,
    "scattered": 0.5,
    "lonely": 0.3,
    "lone": 0.2,
    "empty": 0.15,
    "quiet": 0.8,
    "deserted": 0.2,
    "barren": 0.2,
}

_MOOD_WORDS: dict[str, str] = {
    "cozy": "warm",
    "cosy": "warm",
    "warm": "warm",
    "snug": "warm",
    "wooden": "wood",
    "wood": "wood",
    "log": "wood",
    "rustic": "wood",
    "stone": "stone",
    "medieval": "stone",
    "modern": "plaster",
    "white": "plaster",
}

_INTERIOR_HINTS = frozenset({"cabin", "house", "cottage", "hut", "home", "castle", "church"})

_IGNORED = frozenset(
    {
        "a",
        "an",
        "the",
        "at",
        "in",
        "on",
        "of",
        "by",
        "with",
        "and",
        "or",
        "to",
        "from",
        "under",
        "over",
        "near",
        "beside",
        "next",
        "behind",
        "into",
        "during",
        "some",
        "very",
        "is",
        "are",
        "its",
        "it",
        "scene",
        "view",
        "landscape",
        "world",
        "panorama",
        "beautiful",
        "nice",
        "pretty",
        "photo",
        "picture",
        "360",
        "degree",
        "degrees",
        "this",
        "that",
        "there",
        "here",
        "small",
        "big",
        "large",
        "huge",
        "tall",
        "old",
        "new",
        "little",
        "full",
        "lots",
        "around",
        "among",
        "along",
        "above",
        "for",
        "as",
        "like",
        "time",
    }
)


@dataclass(frozen=True)
class SceneSpec:
    """A procedural world, as saved in ``scene_spec.json`` and accepted by ``--spec``.

    Args:
        seed: random seed for terrain and object placement; another seed gives another world
            of the same kind.
        setting: one of :data:`SETTINGS` ("meadow" by default).
        time_of_day: a key of :data:`TIMES`: dawn, morning, noon, afternoon, sunset, dusk, night.
        weather: one of :data:`WEATHERS`: clear, cloudy, overcast, fog, rain, snow.
        season: one of :data:`SEASONS`; autumn turns broadleaf trees orange, winter adds snow.
        snow_cover: snow on the ground and trees (True for snowy or winter prompts).
        water: "none", "lake" or "sea"; a lake sits in a basin in front of the camera, a sea fills
            the far side of a coastline.
        relief: terrain relief, metres: the typical height of the surrounding hills or peaks.
        roughness: terrain roughness in [0, 1] (0 smooth rolling hills, 1 jagged).
        cloud_cover: fraction of the sky covered by clouds, [0, 1].
        fog_density: extra ground fog, [0, 1] (0 = only distance haze).
        sun_azimuth_deg: compass direction of the sun, degrees clockwise from the view centre
            (-Z) seen from above: 0 ahead, 90 to the right.
        objects: object kind -> density multiplier (see :data:`OBJECT_KINDS`; 1 = the setting's
            usual density, 0 = none, at most 5).
        interior_style: "wood", "stone" or "plaster": wall finish for the interior setting.
        warm_light: warm, low-key lighting (cozy prompts); affects interiors and lamp colours.
        prompt: the prompt this spec was read from ("" when written by hand).
        version: spec format version.
    """

    seed: int = 0
    setting: str = "meadow"
    time_of_day: str = "afternoon"
    weather: str = "clear"
    season: str = "summer"
    snow_cover: bool = False
    water: str = "none"
    relief: float = 40.0
    roughness: float = 0.5
    cloud_cover: float = 0.3
    fog_density: float = 0.0
    sun_azimuth_deg: float = 30.0
    objects: dict[str, float] = field(default_factory=dict)
    interior_style: str = "wood"
    warm_light: bool = False
    prompt: str = ""
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        _validate(self)
        # A frozen dataclass keeps its fields; copy the dict so later edits of the caller's dict
        # cannot change the spec, and order it so JSON bytes are stable.
        object.__setattr__(self, "objects", {k: float(self.objects[k]) for k in sorted(self.objects)})

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (every field; objects as a sorted dict)."""
        return {
            f.name: (dict(getattr(self, f.name)) if f.name == "objects" else getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_json(cls, data: Any) -> SceneSpec:
        """Build from a dict such as :meth:`to_json` returns; raises a one-line InputError on bad fields."""
        if not isinstance(data, dict):
            raise InputError('a scene spec must be a JSON object with fields such as "setting" and "seed"')
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"scene spec has unknown field(s) {', '.join(unknown)}; known fields: {', '.join(known)}")
        values = {}
        for name, value in data.items():
            values[name] = _coerce(name, known[name].type, value)
        return cls(**values)

    def replace(self, **changes: Any) -> SceneSpec:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    ann = str(annotation)
    if ann == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"scene spec field {name!r} must be an integer, got {value!r}")
        return value
    if ann == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"scene spec field {name!r} must be a number, got {value!r}")
        return float(value)
    if ann == "bool":
        if not isinstance(value, bool):
            raise InputError(f"scene spec field {name!r} must be true or false, got {value!r}")
        return value
    if ann == "str":
        if not isinstance(value, str):
            raise InputError(f"scene spec field {name!r} must be a string, got {value!r}")
        return value
    if name == "objects":
        if not isinstance(value, dict):
            raise InputError("scene spec field 'objects' must be an object such as {\"pine\": 1.0}")
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"scene spec object amount for {k!r} must be a number, got {v!r}")
            out[k] = float(v)
        return out
    return value


def _validate(s: SceneSpec) -> None:
    def choice(name: str, value: Any, allowed: Any) -> None:
        if value not in allowed:
            raise InputError(f"scene spec {name} {value!r} is not known; use one of: {', '.join(allowed)}")

    def rng(name: str, value: Any, lo: float, hi: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo <= float(value) <= hi):
            raise InputError(f"scene spec {name} = {value!r} must be a number in [{lo}, {hi}]")

    if s.version != SPEC_VERSION:
        raise InputError(
            f"scene spec version {s.version!r} is not supported; this worldgen reads version {SPEC_VERSION}"
        )
    if isinstance(s.seed, bool) or not isinstance(s.seed, int) or not (0 <= s.seed < 2**63):
        raise InputError(f"scene spec seed {s.seed!r} must be a non-negative integer")
    choice("setting", s.setting, SETTINGS)
    choice("time_of_day", s.time_of_day, tuple(TIMES))
    choice("weather", s.weather, WEATHERS)
    choice("season", s.season, SEASONS)
    choice("water", s.water, ("none", "lake", "sea"))
    choice("interior_style", s.interior_style, ("wood", "stone", "plaster"))
    if not isinstance(s.snow_cover, bool) or not isinstance(s.warm_light, bool):
        raise InputError("scene spec snow_cover and warm_light must be true or false")
    rng("relief", s.relief, 0.0, 3000.0)
    rng("roughness", s.roughness, 0.0, 1.0)
    rng("cloud_cover", s.cloud_cover, 0.0, 1.0)
    rng("fog_density", s.fog_density, 0.0, 1.0)
    rng("sun_azimuth_deg", s.sun_azimuth_deg, -360.0, 360.0)
    if not isinstance(s.objects, dict):
        raise InputError('scene spec objects must be a mapping of object kind to amount, e.g. {"pine": 1.0}')
    for kind, amount in s.objects.items():
        choice("object kind", kind, OBJECT_KINDS)
        rng(f"amount of {kind}", amount, 0.0, 5.0)
    if not isinstance(s.prompt, str):
        raise InputError("scene spec prompt must be a string")
    if len(s.prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"scene spec prompt has {len(s.prompt)} characters; at most {MAX_PROMPT_CHARS}")


_DEFAULT_TIME = {"city": "afternoon", "interior": "night", "desert": "afternoon", "canyon": "afternoon"}
_DEFAULT_RELIEF = {
    "forest": 35.0,
    "mountains": 900.0,
    "desert": 25.0,
    "canyon": 120.0,
    "lake": 60.0,
    "coast": 30.0,
    "meadow": 25.0,
    "city": 0.0,
    "village": 15.0,
    "interior": 0.0,
}
_DEFAULT_ROUGH = {
    "forest": 0.45,
    "mountains": 0.8,
    "desert": 0.2,
    "canyon": 0.7,
    "lake": 0.5,
    "coast": 0.5,
    "meadow": 0.3,
    "city": 0.0,
    "village": 0.3,
    "interior": 0.0,
}


# Which setting word names the place when a prompt has several ("a village in the hills").
_SPECIFICITY = {
    "interior": 7,
    "city": 6,
    "village": 5,
    "canyon": 4,
    "desert": 3,
    "mountains": 3,
    "forest": 2,
    "lake": 1,
    "coast": 1,
    "meadow": 1,
}


def _relief(setting: str, terrain_word: str | None) -> float:
    """Terrain relief of ``setting``, raised by a landscape word ("hills", "mountains") that lost
    the setting to a more specific one; capped at 80 m so a settlement's ground stays walkable."""
    relief = _DEFAULT_RELIEF[setting]
    if terrain_word is not None and setting not in ("city", "interior"):
        relief = max(relief, min(_DEFAULT_RELIEF[terrain_word], 80.0))
    return relief


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", prompt.lower())


def _lookup(word: str, table: dict[str, Any]) -> Any:
    """Table entry for ``word`` or its singular (trailing -s / -es dropped)."""
    if word in table:
        return table[word]
    for cut in ("es", "s"):
        if word.endswith(cut) and word[: -len(cut)] in table:
            return table[word[: -len(cut)]]
    return None


def parse_prompt(prompt: str, seed: int = 0) -> tuple[SceneSpec, list[str]]:
    """Read a text prompt into a :class:`SceneSpec`.

    Args:
        prompt: free text, e.g. "snowy mountains at sunset". Unknown words are ignored.
        seed: random seed stored in the spec.

    Returns:
        A tuple: **spec** and **explanation**, one human-readable line per decision (each word
        read, each word ignored, each default taken).
    """
    if not isinstance(prompt, str):
        raise InputError("the prompt must be text")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed {seed!r} must be a non-negative integer")
    words = _words(prompt)
    lines: list[str] = []
    setting = time = weather = season = water = style = None
    snow = warm = False
    objects: dict[str, float] = {}
    amount = 1.0
    terrain_word: str | None = None
    unknown: list[str] = []
    ignored: list[str] = []
    for w in words:
        hit = False
        if w in _SNOW_WORDS:
            snow = True
            lines.append(f"'{w}': snow cover on")
            hit = True
        s = _lookup(w, _SETTING_WORDS)
        if s is not None and w not in _INTERIOR_HINTS:
            if setting is None or s == setting:
                lines.append(f"'{w}': setting {s}")
                setting = s
            elif s in ("lake", "coast") and setting != "interior":
                water = "lake" if s == "lake" else "sea"
                lines.append(f"'{w}': adds water ({water}) to the {setting}")
            elif setting in ("lake", "coast"):
                water = water or ("lake" if setting == "lake" else "sea")
                lines.append(f"'{w}': setting {s}, keeping the {water} of '{setting}'")
                setting = s
            elif setting != "interior":
                # "a village on green hills": the place (village) is the setting; the landscape
                # word shapes its terrain. The more specific setting wins, whatever the order.
                if _SPECIFICITY[s] > _SPECIFICITY[setting]:
                    lines.append(f"'{w}': setting {s} (more specific than {setting})")
                    setting, terrain_word = s, setting
                else:
                    lines.append(f"'{w}': kept the {setting} setting (more specific); {s} terrain")
                    terrain_word = s
            else:
                lines.append(f"'{w}': outdoor word; kept the interior setting")
            hit = True
        t = _lookup(w, _TIME_WORDS)
        if t is not None:
            time = t
            lines.append(f"'{w}': time of day {t}")
            hit = True
        wt = _lookup(w, _WEATHER_WORDS)
        if wt is not None:
            weather = wt
            lines.append(f"'{w}': weather {wt}")
            hit = True
        se = _lookup(w, _SEASON_WORDS)
        if se is not None:
            season = se
            lines.append(f"'{w}': season {se}")
            hit = True
        ob = _lookup(w, _OBJECT_WORDS)
        if ob is not None:
            objects[ob] = max(objects.get(ob, 0.0), 1.0)
            lines.append(f"'{w}': objects: {ob}")
            hit = True
        am = _AMOUNT_WORDS.get(w)
        if am is not None:
            amount = am
            lines.append(f"'{w}': object density x{am:g}")
            hit = True
        mood = _MOOD_WORDS.get(w)
        if mood is not None:
            if mood == "warm":
                warm = True
                lines.append(f"'{w}': warm lighting")
            else:
                style = mood
                lines.append(f"'{w}': interior finish {mood} (used indoors)")
            hit = True
        if not hit:
            if w in _IGNORED or w.isdigit():
                ignored.append(w)
            else:
                unknown.append(w)
    # Buildings named with "interior"/"inside" mean we stand inside them.
    if setting == "interior":
        for hint in ("cabin", "house", "cottage", "hut", "home", "castle", "church"):
            if hint in words:
                objects.pop("house", None)
                objects.pop("tower", None)
                if hint in ("cabin", "hut") and style is None:
                    style = "wood"
                    lines.append(f"'{hint}': interior finish wood")
                if hint in ("castle", "church") and style is None:
                    style = "stone"
                    lines.append(f"'{hint}': interior finish stone")
    if ignored:
        lines.append("ignored common word(s): " + ", ".join(f"'{w}'" for w in ignored))
    if unknown:
        lines.append("not understood, ignored (defaults used instead): " + ", ".join(f"'{w}'" for w in unknown))

    if setting is None:
        # Infer from objects before falling back to the default.
        if objects.keys() & {"building", "lamp"}:
            setting = "city"
        elif objects.keys() & {"house", "fence"}:
            setting = "village"
        elif objects.keys() & INTERIOR_OBJECTS - {"lamp"}:
            setting = "interior"
        elif objects.keys() & {"pine", "broadleaf"}:
            setting = "forest"
        elif "cactus" in objects:
            setting = "desert"
        elif "palm" in objects:
            setting = "coast"
        elif snow:
            setting = "mountains"
        if setting is not None:
            lines.append(f"setting {setting}: inferred from the objects named")
        else:
            setting = "meadow"
            lines.append("setting: no setting word found; default meadow")
    if water is None:
        water = {"lake": "lake", "coast": "sea"}.get(setting, "none")
        if water != "none":
            lines.append(f"water {water}: comes with the {setting} setting")
    if time is None:
        time = _DEFAULT_TIME.get(setting, "afternoon")
        lines.append(f"time of day: not given; default {time}")
    if season is None:
        season = "winter" if snow else "summer"
        lines.append(f"season: not given; default {season}")
    if season == "winter" and setting not in ("interior", "city", "desert", "canyon"):
        snow = True
    if weather is None:
        weather = "snow" if "snowing" in words or "snowfall" in words else "clear"
        lines.append(f"weather: not given; default {weather}")
    if style is None:
        style = "wood"
    # Objects: the setting's defaults, plus what was named; named kinds keep at least amount 1.
    final = dict(_SETTING_OBJECTS[setting])
    for k, v in objects.items():
        if setting != "interior" and k in INTERIOR_OBJECTS - {"lamp"}:
            lines.append(f"objects: {k} only appears in interiors; ignored outdoors")
            continue
        if setting == "interior" and k not in INTERIOR_OBJECTS:
            lines.append(f"objects: {k} cannot stand indoors; ignored")
            continue
        final[k] = max(final.get(k, 0.0), v)
    if setting == "interior":
        # Room words bring the furniture that makes the room what it is.
        for w in words:
            for k, v in _ROOM_OBJECTS.get(w, {}).items():
                if final.get(k, 0.0) < v:
                    final[k] = v
                    lines.append(f"objects: {k} x{v:g} for a {w}")
    if season == "autumn" and final.get("broadleaf", 0) > 0 and final.get("pine", 0) > 0 and "pine" not in objects:
        # Autumn is about turning leaves: broadleaf trees take over from the evergreens.
        final["broadleaf"] = min(5.0, final["broadleaf"] + 0.5 * final["pine"])
        final["pine"] = round(final["pine"] * 0.4, 3)
        lines.append("objects: autumn favours broadleaf trees over pines")
    if setting == "interior" and "fireplace" not in final and (warm or style == "wood" or "cabin" in words):
        final["fireplace"] = 1.0
        lines.append("objects: fireplace added to the cosy wooden interior")
    if amount != 1.0:
        final = {k: min(5.0, v * amount) for k, v in final.items()}
    lines.append("objects: " + ", ".join(f"{k} x{v:g}" for k, v in sorted(final.items())))
    cloud = {"clear": 0.25, "cloudy": 0.6, "overcast": 0.95, "fog": 0.7, "rain": 0.95, "snow": 0.9}[weather]
    fog = {"fog": 0.8, "rain": 0.35, "snow": 0.4}.get(weather, 0.0)
    # The sun stands roughly ahead at dawn and sunset so the warm sky is in the centre of the view;
    # the seed varies it a little so two seeds do not share a sky.
    base_az = {
        "dawn": -20.0,
        "sunset": 15.0,
        "dusk": 10.0,
        "morning": -60.0,
        "noon": 160.0,
        "afternoon": 50.0,
        "night": 30.0,
    }[time]
    az = base_az + ((seed * 2654435761) % 41) - 20.0
    spec = SceneSpec(
        seed=seed,
        setting=setting,
        time_of_day=time,
        weather=weather,
        season=season,
        snow_cover=bool(snow),
        water=water,
        relief=_relief(setting, terrain_word),
        roughness=_DEFAULT_ROUGH[setting],
        cloud_cover=cloud,
        fog_density=fog,
        sun_azimuth_deg=float(az),
        objects=final,
        interior_style=style,
        warm_light=bool(warm),
        prompt=prompt,
    )
    lines.append(f"seed {seed}: terrain and object placement")
    return spec, lines


def explain(prompt: str, seed: int = 0) -> str:
    """How ``prompt`` is read, as text for ``worldgen generate --explain``: one line per decision,
    then the resulting spec as JSON."""
    spec, lines = parse_prompt(prompt, seed)
    body = "\n".join(f"  - {line}" for line in lines)
    return f"Prompt: {prompt!r}\nRead as:\n{body}\nScene spec:\n" + json.dumps(spec.to_json(), indent=2, sort_keys=True)


def spec_to_bytes(spec: SceneSpec) -> bytes:
    """Deterministic JSON bytes of a spec (sorted keys, trailing newline)."""
    return (json.dumps(spec.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


MAX_SPEC_BYTES = 1 << 20
"""Largest --spec file read (1 MB; a real spec is under 1 KB)."""

MAX_PROMPT_CHARS = 10_000


def load_spec(path: str | os.PathLike) -> SceneSpec:
    """Read and validate an edited ``scene_spec.json``.

    Raises:
        InputError: one line naming the file, the problem and the fix.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scene spec {str(p)!r} does not exist; check the path")
    size = p.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise InputError(
            f"scene spec {p.name} is {size / 1e6:.1f} MB; a spec is a few hundred bytes of JSON "
            "(regenerate it with 'worldgen generate PROMPT' and edit scene_spec.json)"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(
            f"scene spec {p.name} is not valid JSON ({e}); fix the file or regenerate it from a prompt"
        ) from e
    except RecursionError as e:  # json recurses once per nesting level
        raise InputError(f"scene spec {p.name} is nested too deeply; a spec is one flat JSON object") from e
    try:
        return SceneSpec.from_json(data)
    except InputError as e:
        raise InputError(f"{p.name}: {e}") from e
