"""Where the ``prior`` depth backend loses on procedural worlds: its error split three ways.

Not part of ``benchmarks/run.py``; run it by hand on the worlds a change is meant to move::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/prior_breakdown.py mountains:0 mountains:4 forest:2

For each ``SETTING:SEED`` (the ``depth`` bench's prompts, 1024x512 unless ``--width``) it prints, over the
pixels that are not sky in the truth (cos-latitude weights; shares are of that whole surface):

1. by elevation band: the share of the surface, its part of the AbsRel, the share that misses δ1 because
   the prior is too near / too far, the median truth and prior (metres) and their median ratio;
2. above the horizon, by true distance band: the same, with the prior's median;
3. above the horizon, by what the prior decided in the pixel's column (``floating``: the contact lies
   within ``contact_min_deg`` of the horizon; ``contact``: a measured contact; ``terrain``: the terrain
   model, ``_terrain_columns``) and whether the pixel is foliage (green over red and blue, the test of
   ``segment_leaf``): the share, the truth's 10th, 25th, 50th, 75th and 90th percentiles and the prior's
   median. This is the table that tells what a rule keyed to one of these classes would meet.

``--save DIR`` also writes, per world, a PNG of four panels stacked: the panorama, the truth and the prior
(log distance, 1 m blue to 3 km red, sky white) and their ratio (red: the prior too near, blue: too
far, full colour at a factor of 8).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_depth import PROMPTS, scores  # noqa: E402
from worldgen.depth.prior import (  # noqa: E402
    PriorConfig,
    _features,
    _latitudes,
    _terrain_columns,
    ground_contact,
    prior_depth,
)
from worldgen.procedural import ProceduralConfig, parse_prompt, synthesize  # noqa: E402

ELEVATION_BANDS = [(-90, -10), (-10, -3), (-3, 0), (0, 3), (3, 10), (10, 20), (20, 30), (30, 90)]
DISTANCE_BANDS = [(0, 10), (10, 30), (30, 100), (100, 300), (300, 1000), (1000, math.inf)]


def _ramp(v: np.ndarray) -> np.ndarray:
    """[0, 1] -> blue, cyan, green, yellow, red. [..., 3] uint8"""
    v = np.clip(v, 0, 1)
    rgb = [np.clip(1.5 - np.abs(4 * v - c), 0, 1) for c in (3, 2, 1)]
    return (np.stack(rgb, -1) * 255).astype(np.uint8)


def _picture(img: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Panorama, truth, prior and their ratio stacked, with the horizon drawn. [4H, W, 3] uint8"""

    def logc(d: np.ndarray) -> np.ndarray:
        out = _ramp(np.log10(np.clip(np.where(np.isfinite(d), d, 1.0), 1.0, 3000.0)) / 3.5)
        out[~np.isfinite(d)] = 255
        return out

    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log2(pred / gt)
    r = np.where(np.isfinite(r), np.clip(r / 3, -1, 1), 0.0)
    err = np.full(r.shape + (3,), 255, np.uint8)
    err[..., 0] = np.where(r < 0, 255, 255 * (1 - r)).astype(np.uint8)
    err[..., 1] = (255 * (1 - np.abs(r))).astype(np.uint8)
    err[..., 2] = np.where(r > 0, 255, 255 * (1 + r)).astype(np.uint8)
    h = img.shape[0]
    out = np.concatenate([(img * 255).astype(np.uint8), logc(gt), logc(pred), err], 0)
    out[h // 2 :: h] = 0
    return out


def breakdown(setting: str, seed: int, width: int, save: str | None) -> None:
    spec, _ = parse_prompt(PROMPTS[setting], seed)
    pano, truth, _ = synthesize(spec, 1.6, ProceduralConfig(width=width, previews=False))
    img, gt = pano.image, truth.depth
    dm, _ = prior_depth(pano, 1.6)
    pred, sky = dm.depth, dm.sky
    s = scores(pred, sky, gt)
    h, w = gt.shape
    lat = np.broadcast_to(np.degrees(_latitudes(h))[:, None], gt.shape)
    wt = np.cos(np.radians(lat))
    m = np.isfinite(gt) & np.isfinite(pred)
    total = wt[m].sum()
    rel = np.zeros_like(gt)
    ratio = np.ones_like(gt)
    rel[m] = np.abs(pred[m] - gt[m]) / gt[m]
    ratio[m] = pred[m] / gt[m]
    near = m & (ratio < 0.8)
    far = m & (ratio > 1.25)
    print(f"== {setting} {seed} ({width}x{h}): AbsRel {s['absrel']:.3f}, δ1 {s['d1']:.3f}, sky IoU {s['iou']:.3f}")

    def row(k: np.ndarray) -> str:
        return (
            f"{wt[k].sum() / total:6.3f} {(rel * wt)[k].sum() / total:7.3f} {(wt * (k & near)).sum() / total:7.3f}"
            f" {(wt * (k & far)).sum() / total:7.3f}"
        )

    print("  elevation     share  AbsRel  δ1 near  δ1 far  truth  prior  ratio (medians)")
    for a, b in ELEVATION_BANDS:
        k = m & (lat >= a) & (lat < b)
        if k.any():
            print(
                f"  {a:4d}..{b:4d}  {row(k)}  {np.median(gt[k]):6.1f} {np.median(pred[k]):6.1f} {np.median(ratio[k]):5.2f}"
            )
    print("  true distance, above the horizon   share  AbsRel  δ1 near  δ1 far  prior (median)")
    for a, b in DISTANCE_BANDS:
        k = m & (gt >= a) & (gt < b) & (lat > 0)
        if k.any():
            print(f"  {a:6.0f}..{b:6.0f} m {' ' * 14}{row(k)}  {np.median(pred[k]):6.1f}")
    # what the prior decided in each column (the same calls as outdoor_prior)
    cfg = PriorConfig()
    feats = _features(img)
    contact = ground_contact(pano, sky, cfg, structure=True, feats=feats)
    lat_c = math.pi / 2 - math.pi * (contact + 0.5) / h
    floating = lat_c >= -math.radians(cfg.contact_min_deg)
    terrain, _, _ = _terrain_columns(img, sky, cfg, feats)
    leaf = (img[..., 1] > img[..., 0]) & (img[..., 1] > img[..., 2])
    above = m & (lat > 0)
    print("  above the horizon, by column      share  truth p10 p25 p50 p75 p90  prior (median)")
    for name, cols in (("floating", floating & ~terrain), ("contact", ~floating & ~terrain), ("terrain", terrain)):
        for lname, lm in (("foliage", leaf), ("other", ~leaf)):
            k = above & cols[None] & lm
            if wt[k].sum() / total >= 0.002:
                q = " ".join(f"{v:6.0f}" for v in np.percentile(gt[k], [10, 25, 50, 75, 90]))
                print(f"  {name:8s} {lname:8s}{' ' * 16}{wt[k].sum() / total:6.3f}  {q}  {np.median(pred[k]):6.1f}")
    if save:
        from PIL import Image

        os.makedirs(save, exist_ok=True)
        Image.fromarray(_picture(img, gt, pred)).save(os.path.join(save, f"prior_{setting}_{seed}.png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("worlds", nargs="+", help="SETTING:SEED, e.g. mountains:0")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--save", help="folder for the pictures")
    args = ap.parse_args()
    for world in args.worlds:
        setting, seed = world.split(":")
        if setting not in PROMPTS:
            raise SystemExit(f"unknown setting {setting!r}; one of {', '.join(PROMPTS)}")
        breakdown(setting, int(seed), args.width, args.save)


if __name__ == "__main__":
    main()
