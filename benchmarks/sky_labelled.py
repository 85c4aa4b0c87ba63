"""The labelled set for the sky mask and the indoor/outdoor decision (worldgen/depth/sky.py): 200 panoramas.

Not part of ``benchmarks/run.py`` (it needs material outside the repository); run it by hand before and
after a change to sky.py and compare::

    .venv/bin/python benchmarks/sky_labelled.py --save /tmp/sky_before      # on the old code
    .venv/bin/python benchmarks/sky_labelled.py --save /tmp/sky_after --compare /tmp/sky_before.json

Groups (1024x512; "sky right" = sky IoU >= 0.95 outdoors, no sky pixel indoors):
- ``proc``: the procedural worlds, 10 settings x seeds 0-4 (the ``depth`` bench's prior rows);
- ``var``: white-ceiling rooms (the ceiling re-coloured white), cities at night (with the procedural
  stars, a starless light-polluted sky, a starless black one), forest, canyon and village nights under a
  black sky, snowy mountains;
- ``extra``: more interiors (cozy seeds 5-9, dusk, noon, morning, plaster at night, stone halls) and
  outdoors (overcast, fog, sunset, dusk, desert and mountains at night);
- ``stel``: Stellarium's photographed landscapes (Moon, Mars, Grossmugl, Garching, Guereins, Hurricane
  Ridge, ocean, trees), their transparent sky (the truth) filled with 8 synthetic skies: day, black,
  starry, overcast, dark overcast, sunset, flat grey, flat white. Needs the Debian package
  ``stellarium-data`` unpacked (``apt-get download stellarium-data && dpkg -x stellarium-data_*.deb DIR``;
  ``--stellarium DIR``); skipped without it;
- ``hdri``: the 10 HDRI photographs shipped with viser (1k JPEGs, labelled by eye; no sky truth);
- ``blender``: the 7 world HDRIs Blender ships as studio lights (``datafiles/studiolights/world/*.exr``,
  read through ``worldgen.io.read_image`` as a user's EXR is; labelled by eye, no sky truth). The
  courtyard (a carport roof over most of the view, the sky seen past its edge) is left out: indoor
  and outdoor are both fair answers there. Needs ``make blender`` (``--blender DIR``); skipped without it.

Procedural renders are cached (``--cache``). Prints the cases that are wrong and a table per group; with
``--compare``, every case whose decision or sky IoU (by more than 0.002) changed, and the cases that
went from right to wrong.
"""

from __future__ import annotations

import argparse
import configparser
import glob
import hashlib
import json
import math
import os
import sys
import zlib

import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from worldgen.depth.sky import is_indoor, sky_gaps, sky_mask  # noqa: E402
from worldgen.procedural import SETTINGS, ProceduralConfig, parse_prompt, synthesize  # noqa: E402
from worldgen.procedural.render import SEMANTIC_CLASSES  # noqa: E402
from worldgen.types import Panorama  # noqa: E402

W, H = 1024, 512
STELLARIUM = ("moon", "mars", "grossmugl", "garching", "guereins", "hurricane", "ocean", "trees")
SKIES = ("day", "black", "starry", "overcast", "darkovercast", "sunset", "grey", "white")
HDRI_INDOOR = ("empty_warehouse", "lebombo", "st_fagans", "studio_small")
BLENDER_WORLDS = {
    "city": False,
    "forest": False,
    "interior": True,
    "night": False,
    "studio": True,
    "sunrise": False,
    "sunset": False,
}


def _grid() -> tuple[np.ndarray, np.ndarray]:
    lat = np.pi / 2 - np.pi * (np.arange(H) + 0.5) / H
    lon = 2 * np.pi * (np.arange(W) + 0.5) / W - np.pi
    return lat[:, None] * np.ones((1, W)), lon[None, :] * np.ones((H, 1))


def procedural(cache: str, prompt: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A procedural world's panorama [H, W, 3], true sky [H, W] and semantic ids [H, W] (cached)."""
    path = os.path.join(cache, f"p_{hashlib.md5(f'{prompt}|{seed}'.encode()).hexdigest()[:12]}.npz")
    if not os.path.exists(path):
        spec, _ = parse_prompt(prompt, seed)
        pano, depth, sem = synthesize(spec, 1.6, ProceduralConfig(width=W, previews=False))
        tmp = path + ".tmp.npz"
        np.savez_compressed(tmp, img=pano.image.astype(np.float32), sky=~np.isfinite(depth.depth), ids=sem.ids)
        os.replace(tmp, path)
    z = np.load(path, allow_pickle=False)
    return z["img"], z["sky"], z["ids"]


def synthetic_sky(kind: str, seed: int = 0) -> np.ndarray:
    """A synthetic sky over the whole sphere. [H, W, 3]"""
    lat, _ = _grid()
    rng = np.random.default_rng(seed)
    t = np.clip(1 - np.sin(np.maximum(lat, 0)), 0, 1)[..., None]  # 1 at the horizon, 0 at the zenith
    noise = rng.normal(0, 0.006, (H, W, 1))
    if kind == "grey":
        return np.full((H, W, 3), 0.5)
    if kind == "white":
        return np.full((H, W, 3), 0.97)
    if kind == "starry":
        s = np.zeros((H, W, 3)) + 0.012 + 0.01 * t
        k = H * W // 400
        ys, xs = rng.integers(0, H // 2, k), rng.integers(0, W, k)
        s[ys, xs] = rng.uniform(0.3, 1.0, k)[:, None]
        return np.clip(s + noise * 0.3, 0, 1)
    top, low, power = {
        "day": ((0.25, 0.45, 0.85), (0.7, 0.8, 0.92), 1),
        "black": ((0.01, 0.01, 0.01), (0.01, 0.01, 0.01), 1),
        "overcast": ((0.72, 0.73, 0.75), (0.85, 0.85, 0.86), 1),
        "darkovercast": ((0.38, 0.39, 0.41), (0.5, 0.5, 0.51), 1),
        "citynight": ((0.03, 0.03, 0.045), (0.16, 0.11, 0.08), 3),  # light-polluted, starless
        "blacknight": ((0.02, 0.02, 0.025), (0.05, 0.045, 0.045), 2),
    }.get(kind, (None, None, None))
    if kind == "sunset":
        s = np.array([0.18, 0.22, 0.45]) * (1 - t) ** 2 + np.array([1.0, 0.55, 0.2]) * (1 - (1 - t) ** 2)
    elif top is not None:
        s = np.array(top) * (1 - t) + np.array(low) * t**power
    else:
        raise ValueError(f"unknown sky {kind!r}")
    return np.clip(s + noise, 0, 1)


def _rgba(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"), np.float32) / 255.0


def _sample(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    th, tw = tex.shape[:2]
    return tex[np.clip(v * th, 0, th - 1).astype(int), np.clip(u * tw, 0, tw - 1).astype(int)]


def stellarium(root: str, cache: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A Stellarium landscape as an equirect: colour [H, W, 3] and alpha [H, W] (0 = sky), cached."""
    path = os.path.join(cache, f"s_{name}.npz")
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        return z["rgb"], z["a"]
    d = os.path.join(root, name)
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.read(os.path.join(d, "landscape.ini"))
    land = ini["landscape"]
    lat, lon = _grid()
    kind = land["type"].strip()
    if kind == "spherical":
        tex = _rgba(os.path.join(d, land["maptex"].strip()))
        top, bottom = (
            math.radians(float(land.get("maptex_top", 90))),
            math.radians(float(land.get("maptex_bottom", -90))),
        )
        u = np.mod((lon + math.radians(float(land.get("angle_rotatez", 0)))) / (2 * np.pi) + 0.5, 1.0)
        v = (top - lat) / (top - bottom)
        out = _sample(tex, u, v)
        out[(v < 0) | (v > 1)] = 0
    elif kind == "fisheye":
        tex = _rgba(os.path.join(d, land["maptex"].strip()))
        r = (np.pi / 2 - lat) / math.radians(float(land.get("texturefov", 360)))
        rot = lon + math.radians(float(land.get("angle_rotatez", 0)))
        out = _sample(tex, 0.5 + r * np.sin(rot), 0.5 - r * np.cos(rot))
        out[r > 0.5] = (0.1, 0.1, 0.1, 1)
    else:  # old style: nbside side textures around the horizon, a fisheye ground
        out = np.zeros((H, W, 4), np.float32)
        nb = int(land["nbside"])
        alt = math.radians(float(land.get("decor_alt_angle", 90)))
        shift = math.radians(float(land.get("decor_angle_shift", 0)))
        az = np.mod(np.mod(lon, 2 * np.pi) + math.radians(float(land.get("decor_angle_rotatez", 0))), 2 * np.pi)
        side = np.floor(az / (2 * np.pi) * nb).astype(int) % nb
        frac = np.mod(az / (2 * np.pi) * nb, 1.0)
        vv = (shift + alt - lat) / alt
        texs: dict[str, np.ndarray] = {}
        for i in range(nb):
            spec = land[f"side{i}"].split(":")
            tname = land[spec[0].strip()].strip()
            texs.setdefault(tname, _rgba(os.path.join(d, tname)))
            x0, y0, x1, y1 = map(float, spec[1:5])
            m = side == i
            px = _sample(texs[tname], x0 + frac[m] * (x1 - x0), y0 + vv[m] * (y1 - y0))
            px[vv[m] < 0] = 0
            out[m] = px
        g = land["ground"].split(":")
        gtex = _rgba(os.path.join(d, land[g[0].strip()].strip()))
        r = (lat + np.pi / 2) / (math.radians(float(land.get("ground_angle_shift", 0))) + np.pi / 2) * 0.5
        grot = lon + math.radians(float(land.get("ground_angle_rotatez", 0)))
        gp = _sample(gtex, 0.5 + r * np.sin(grot), 0.5 + r * np.cos(grot))
        gp[..., 3] = 1
        below = (vv > 1) | (lat < shift)
        out[below] = gp[below]
    np.savez_compressed(path, rgb=out[..., :3], a=out[..., 3])
    return out[..., :3], out[..., 3]


def white_ceiling(img: np.ndarray, ids: np.ndarray, shade: float = 0.93, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    """The ceiling re-coloured a uniform white, keeping its lighting (smoothed luminance)."""
    ceil = ids == list(SEMANTIC_CLASSES).index("ceiling")
    lum = 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]
    sm = ndimage.gaussian_filter(np.where(ceil, lum, 0), 6) / np.maximum(ndimage.gaussian_filter(ceil * 1.0, 6), 1e-3)
    v = np.clip(sm / max(np.percentile(sm[ceil], 95), 1e-3), 0.55, 1.0) * shade
    out = img.copy()
    out[ceil] = v[ceil][:, None] * np.array(tint)
    return out


def cases(groups: list[str], cache: str, stel_root: str | None, blender_root: str | None = None):
    """Yields (group, name, image [H, W, 3], true sky [H, W] or None, indoor)."""
    if "proc" in groups:
        for st in SETTINGS:
            prompt = "a cozy living room interior" if st == "interior" else f"a {st}"
            for seed in range(5):
                img, sky, _ = procedural(cache, prompt, seed)
                yield "proc", f"{st}{seed}", img, sky, st == "interior"
    if "var" in groups:
        for seed in range(5):
            img, sky, ids = procedural(cache, "a white modern living room interior at noon", seed)
            yield "var", f"plaster-noon{seed}", img, sky, True
            yield "var", f"whiteceil-noon{seed}", white_ceiling(img, ids), sky, True
        for seed in range(3):
            img, sky, ids = procedural(cache, "a cozy living room interior", seed)
            yield "var", f"whiteceil-cozy{seed}", white_ceiling(img, ids, 0.85, (1.0, 0.97, 0.92)), sky, True
            img, sky, ids = procedural(cache, "a stone hall interior in the afternoon", seed)
            yield "var", f"whiteceil-stone{seed}", white_ceiling(img, ids, 0.95), sky, True
        for seed in range(5):
            img, sky, _ = procedural(cache, "a city at night", seed)
            yield "var", f"citynight{seed}", img, sky, False
            for kind, tag in (("citynight", "starless"), ("blacknight", "black")):
                yield "var", f"citynight-{tag}{seed}", np.where(sky[..., None], synthetic_sky(kind), img), sky, False
        for st in ("forest", "canyon", "village"):
            for seed in range(2):
                img, sky, _ = procedural(cache, f"a {st} at night", seed)
                out = np.where(sky[..., None], synthetic_sky("blacknight"), img)
                yield "var", f"{st}night-starless{seed}", out, sky, False
        for seed in range(5):
            img, sky, _ = procedural(cache, "snowy mountains", seed)
            yield "var", f"snowmount{seed}", img, sky, False
    if "stel" in groups and stel_root:
        lat, _ = _grid()
        for name in STELLARIUM:
            rgb, a = stellarium(stel_root, cache, name)
            for kind in SKIES:
                s = synthetic_sky(kind, seed=zlib.crc32(name.encode()) % 1000)
                img = rgb * a[..., None] + s * (1 - a[..., None])
                yield "stel", f"{name}-{kind}", img, (a < 0.5) & (lat > 0), False
    if "extra" in groups:
        for seed in range(5, 10):
            img, sky, _ = procedural(cache, "a cozy living room interior", seed)
            yield "extra", f"interior{seed}", img, sky, True
        # (prompt, tag, seeds, indoor): lighting and material variants of both kinds of world.
        variants = (
            ("a stone hall interior in the afternoon", "stone-aft", 3, True),
            ("a living room interior at dusk", "dusk", 3, True),
            ("a living room interior at noon", "noon", 3, True),
            ("a white modern living room interior at night", "plaster-night", 3, True),
            ("a living room interior in the morning", "morning", 3, True),
            ("a city on an overcast day", "city-overcast", 2, False),
            ("a forest on an overcast day", "forest-overcast", 2, False),
            ("a village in fog", "village-fog", 2, False),
            ("a meadow at sunset", "meadow-sunset", 2, False),
            ("a desert at night", "desert-night", 2, False),
            ("a mountains at night", "mountains-night", 2, False),
            ("a meadow at dusk", "meadow-dusk", 2, False),
        )
        for prompt, tag, seeds, indoors in variants:
            for seed in range(seeds):
                img, sky, _ = procedural(cache, prompt, seed)
                yield "extra", f"{tag}{seed}", img, sky, indoors
    if "hdri" in groups:
        import viser

        folder = os.path.join(os.path.dirname(viser.__file__), "_assets", "hdri")
        for path in sorted(glob.glob(os.path.join(folder, "*.jpg"))):
            name = os.path.basename(path).split(".")[0]
            img = np.asarray(Image.open(path).convert("RGB").resize((W, H), Image.BILINEAR), np.float32) / 255
            yield "hdri", name, img, None, name.startswith(HDRI_INDOOR)
    if "blender" in groups and blender_root:
        from worldgen.io import read_image

        for name, indoor in BLENDER_WORLDS.items():
            rgb = Image.fromarray(read_image(os.path.join(blender_root, f"{name}.exr")))
            img = np.asarray(rgb.resize((W, H), Image.BILINEAR), np.float32) / 255
            yield "blender", name, img, None, indoor


def evaluate(groups: list[str], cache: str, stel_root: str | None, blender_root: str | None = None) -> list[dict]:
    res = []
    for group, name, img, truth, indoor in cases(groups, cache, stel_root, blender_root):
        pano = Panorama(np.clip(img, 0, 1).astype(np.float32))
        sky = sky_mask(pano)
        ind, facts = is_indoor(pano, sky)
        # as the depth backends do: no sky indoors, the sky seen through gaps outdoors
        sky = np.zeros_like(sky) if ind else sky | sky_gaps(pano, sky)
        if truth is None:
            iou, ok_sky = float("nan"), (not sky.any()) if indoor else True
        else:
            union = (sky | truth).sum()
            iou = float((sky & truth).sum() / union) if union else 1.0
            ok_sky = (not sky.any()) if indoor else iou >= 0.95
        r = {
            "group": group,
            "name": name,
            "label": "indoor" if indoor else "outdoor",
            "pred": "indoor" if ind else "outdoor",
            "iou": round(iou, 4),
            "sky": round(float(sky.mean()), 4),
            "ok_scene": ind == indoor,
            "ok_sky": bool(ok_sky),
            "facts": facts,
        }
        res.append(r)
        if not (r["ok_scene"] and r["ok_sky"]):
            print(f"{group:5s} {name:26s} {r['label']:7s} -> {r['pred']:7s} sky IoU {iou:.3f}", flush=True)
    return res


def table(res: list[dict]) -> None:
    for g in dict.fromkeys(r["group"] for r in res):
        rr = [r for r in res if r["group"] == g]
        print(
            f"{g:5s} cases {len(rr):3d}  scene right {sum(r['ok_scene'] for r in rr):3d}  sky right {sum(r['ok_sky'] for r in rr):3d}"
        )


def compare(before: list[dict], after: list[dict]) -> None:
    old = {r["name"]: r for r in before}
    worse = 0
    for r in after:
        o = old.get(r["name"])
        if o is None:
            continue
        was, now = o["ok_scene"] and o["ok_sky"], r["ok_scene"] and r["ok_sky"]
        d = 0.0 if math.isnan(o["iou"]) or math.isnan(r["iou"]) else r["iou"] - o["iou"]
        if was != now or abs(d) > 0.002 or o["pred"] != r["pred"]:
            flag = "RIGHT -> WRONG" if was and not now else "wrong -> right" if now and not was else ""
            worse += flag.startswith("RIGHT")
            print(f"{r['name']:26s} {o['pred']:7s} -> {r['pred']:7s} sky IoU {o['iou']:.3f} -> {r['iou']:.3f} {flag}")
    print(f"right -> wrong: {worse}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="proc,var,stel,extra,hdri,blender")
    ap.add_argument("--stellarium", default="/tmp/stel/x", help="stellarium-data unpacked (dpkg -x)")
    ap.add_argument("--blender", help="Blender's studiolights/world folder (default: the one `make blender` installs)")
    ap.add_argument("--cache", default="/tmp/worldgen_sky_labelled")
    ap.add_argument("--save", help="write the results to PREFIX.json")
    ap.add_argument("--compare", help="a PREFIX.json written before")
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    root = os.path.join(args.stellarium, "usr", "share", "stellarium", "landscapes")
    if not os.path.isdir(root):
        print(f"no Stellarium landscapes under {root}: the stel group is skipped")
        root = None
    blender = args.blender or next(
        iter(
            sorted(
                glob.glob(
                    os.path.join(
                        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        ".venv-blender/lib/python3*/site-packages/bpy/*/datafiles/studiolights/world",
                    )
                )
            )
        ),
        None,
    )
    if "blender" in args.groups.split(",") and not (blender and os.path.isdir(blender)):
        print("no Blender studio lights (make blender, or --blender DIR): the blender group is skipped")
        blender = None
    res = evaluate(args.groups.split(","), args.cache, root, blender)
    table(res)
    if args.save:
        with open(args.save + ".json", "w") as f:
            json.dump(res, f, default=str)
    if args.compare:
        with open(args.compare) as f:
            compare(json.load(f), res)


if __name__ == "__main__":
    main()
