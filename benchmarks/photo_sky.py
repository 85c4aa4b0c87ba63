"""The sky of photo worlds (``--image``): procedural worlds cut as level 90° photos, placed by the photo
backend, their sky mask scored inside the photo's frustum against the exact sky.

Not part of ``benchmarks/run.py`` (a diagnostic, like ``sky_labelled.py``); run it by hand before and
after a change to worldgen/depth/sky.py or worldgen/stages/photo.py::

    .venv/bin/python benchmarks/photo_sky.py                       # every outdoor setting, seeds 0-1
    .venv/bin/python benchmarks/photo_sky.py city mountains --seeds 0,1,2

Each world (1024x512) is turned by 0°, 90°, 180° and 270° and cut as a 640x480 photo of 90° (JPEG-free:
the 8-bit pixels go straight to ``photo_panorama``), placed in a 1024x512 photo world, and
``sky_mask`` (and ``is_indoor``: a room has no sky) is scored in the photo's frustum, cos-latitude
weighted: sky IoU and the ratio of the sky called to the true sky.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from worldgen.depth.sky import is_indoor, seen_sky, sky_mask  # noqa: E402
from worldgen.depth.views import project  # noqa: E402
from worldgen.geometry import equirect_directions  # noqa: E402
from worldgen.geometry.equirect import equirect_to_perspective  # noqa: E402
from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize  # noqa: E402
from worldgen.stages.photo import PhotoConfig, photo_panorama  # noqa: E402
from worldgen.types import Camera  # noqa: E402

OUTDOOR = ("city", "village", "forest", "meadow", "lake", "coast", "desert", "canyon", "mountains")
W = 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", nargs="*", default=list(OUTDOOR))
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    h = W // 2
    cam = Camera("perspective", 640, 480, 320.0, 320.0, 320, 240)  # 90° across
    inside = np.zeros(h * W, bool)
    inside[project(equirect_directions(h).reshape(-1, 3).astype(np.float32), cam).index] = True
    inside = inside.reshape(h, W)
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    wt = np.cos(lat)[:, None] * np.ones((1, W))
    ious = []
    for setting in args.settings:
        for seed in (int(s) for s in args.seeds.split(",")):
            spec, _ = parse_prompt(f"a {setting}", seed)
            pano, truth, _ = synthesize(spec, 1.6, ProceduralConfig(width=W, previews=False))
            for k in range(4):
                img = np.roll(pano.image, k * W // 4, axis=1)
                true_sky = np.roll(~np.isfinite(truth.depth), k * W // 4, axis=1) & inside
                cut = equirect_to_perspective(img, cam, "bilinear")
                photo = (np.clip(cut, 0, 1) * 255).round().astype(np.uint8)
                world, sem, _ = photo_panorama(photo, 90.0, PhotoConfig(width=W))
                # as the pipeline decides (worldgen.depth.prior.prior_depth): the zenith and the rest
                # of the backdrop were not seen
                sky = sky_mask(world)
                indoor, _ = is_indoor(world, sky, zenith_seen=False)
                sky = (seen_sky(world, sky, sem.mask("unknown")) & inside) if not indoor else np.zeros_like(sky)
                union = float((wt * (sky | true_sky)).sum())
                iou = float((wt * (sky & true_sky)).sum()) / union if union else 1.0
                ratio = float((wt * sky).sum()) / max(float((wt * true_sky).sum()), 1e-9)
                ious.append(iou)
                frustum = float((wt * inside).sum())
                called = (
                    f"{ratio:.2f}"
                    if ratio < 1e6
                    else f"sky where there is none ({100 * float((wt * sky).sum()) / frustum:.2f} % of the frustum)"
                )
                note = " (decided indoor)" if indoor else ""
                print(f"{setting:10s} seed {seed} turned {90 * k:3d}°: sky IoU {iou:.3f}, called/true {called}{note}")
    a = np.array(ious)
    print(f"{len(a)} photos: mean sky IoU {a.mean():.3f}, {int((a >= 0.9).sum())} at 0.9 or more")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
