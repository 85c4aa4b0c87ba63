"""The `transformers` depth backend's own code path on panoramas of exact depth, with a simulated model.

Not part of ``benchmarks/run.py`` (it needs scenes from outside the repository); run it by hand on
folders that each hold ``image.png`` (equirect), ``depth.npy`` (float32 [H, W], Euclidean ray distance in
metres, ``inf`` = sky) and ``sky.npy`` (bool [H, W])::

    .venv/bin/python benchmarks/simulated_model.py /path/to/scenes/* --sigma 0.1

No weights are needed: ``estimate_depth`` runs as it does for a real relative model (sky, indoor or
outdoor, alignment, metric scale from the ground, merge), except that each view's prediction is the
true disparity (1 / z-depth, sampled from ``depth.npy``) under a relative model's errors: a random scale
(log-normal, σ 0.7) and shift (±30 % of the view's median), times a smooth error of its own (log-normal,
``--sigma``, correlated over a sixth of the view); sky at disparity 0. With ``--metric``, a metric model
instead: z-depth in metres under a per-view scale (log-normal, σ 0.1) and the same smooth error, sky at
80 m (Depth Anything's outdoor cap), its own scale kept as the backend keeps a metric model's. Scored
against ``depth.npy``
(metric, cos-latitude weighted; a pixel called sky that is not counts as AbsRel 1): AbsRel, δ1, sky IoU,
and where the scale came from; the ``prior`` backend's AbsRel and δ1 beside it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import worldgen.depth.model as backend  # noqa: E402
from worldgen.depth.prior import prior_depth  # noqa: E402
from worldgen.depth.views import ray_length  # noqa: E402
from worldgen.geometry.equirect import equirect_to_perspective  # noqa: E402
from worldgen.io import read_image  # noqa: E402
from worldgen.types import Panorama  # noqa: E402


def score(pred: np.ndarray, pred_sky: np.ndarray, truth: np.ndarray, true_sky: np.ndarray):
    """(AbsRel, δ1, sky IoU or None) over the true non-sky pixels, cos-latitude weighted."""
    h, w = truth.shape
    lat = np.pi / 2 - np.pi * (np.arange(h) + 0.5) / h
    wt = np.broadcast_to(np.cos(lat)[:, None], (h, w))
    m = ~true_sky
    t = np.where(m, truth, 1.0)
    p = np.where(pred_sky, 1.0, pred)
    rel = np.where(pred_sky, 1.0, np.abs(p - t) / t)
    ratio = np.where(pred_sky, np.inf, np.maximum(p / t, t / p))
    absrel = float(np.average(rel[m], weights=wt[m]))
    d1 = float(np.average(ratio[m] < 1.25, weights=wt[m]))
    iou = float((wt * (pred_sky & true_sky)).sum() / (wt * (pred_sky | true_sky)).sum()) if true_sky.any() else None
    return absrel, d1, iou


class _Simulated:
    """Stands in for a model: ``estimate_depth`` reads ``config.model_type`` only."""

    class config:
        model_type = "simulated"


def simulate(folder: Path, sigma: float, seed: int, view_size: int, metric: bool = False) -> str:
    truth = np.load(folder / "depth.npy")
    true_sky = np.load(folder / "sky.npy")
    img = read_image(folder / "image.png")
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    rng = np.random.default_rng(seed)
    cams_seen: list = []
    sphere_views = backend.sphere_views

    def views(size, fov_deg=100.0):
        cams_seen[:] = sphere_views(size, fov_deg)
        return cams_seen

    def predict(model, processor, batch_views, batch, device, progress=None, fov_deg=100.0):
        out = []
        finite = np.where(np.isfinite(truth), truth, 0.0).astype(np.float32)
        for cam in cams_seen:
            z = equirect_to_perspective(finite, cam, "nearest") / ray_length(cam)
            disp = np.where(z > 0, 1.0 / np.maximum(z, 1e-6), 0.0)
            med = float(np.median(disp[disp > 0])) if (disp > 0).any() else 1.0
            smooth = ndimage.gaussian_filter(rng.standard_normal(disp.shape), disp.shape[0] / 6)
            smooth /= smooth.std() + 1e-12
            if metric:
                zm = np.where(z > 0, z, 80.0) * math.exp(rng.normal(0, 0.1)) * np.exp(sigma * smooth)
                out.append(zm)
                continue
            scale, shift = math.exp(rng.normal(0, 0.7)), rng.uniform(-0.3, 0.3) * med
            out.append(scale * disp * np.exp(sigma * smooth) + shift)
        return np.stack(out).astype(np.float32)

    saved = backend.sphere_views, backend.predict_views, backend.load_depth_model
    backend.sphere_views, backend.predict_views = views, predict
    backend.load_depth_model = lambda path, device="cpu", dtype=None: (_Simulated(), None, metric)
    try:
        config = backend.TransformersDepthConfig(model="simulated", view_size=view_size, device="cpu")
        depth, report = backend.estimate_depth(Panorama(img), 1.6, config)
    finally:
        backend.sphere_views, backend.predict_views, backend.load_depth_model = saved
    a, d1, iou = score(depth.depth, depth.sky, truth, true_sky)
    prior, _ = prior_depth(Panorama(img), 1.6)
    pa, pd1, _ = score(prior.depth, prior.sky, truth, true_sky)
    sky = "-" if iou is None else f"{iou:.3f}"
    return (
        f"{folder.name:16s} merge {a:.3f}/{d1:.2f} sky IoU {sky}; scale from {report['scale_from']}, "
        f"ground support {report['ground_support']}; prior {pa:.3f}/{pd1:.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenes", nargs="+", type=Path, help="folders with image.png, depth.npy and sky.npy")
    ap.add_argument("--sigma", type=float, default=0.1, help="smooth error per view (log-normal σ)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--view-size", type=int, default=256, help="views' side in pixels")
    ap.add_argument("--metric", action="store_true", help="a metric model (z-depth in metres) instead")
    args = ap.parse_args()
    for folder in args.scenes:
        if not all((folder / f).is_file() for f in ("image.png", "depth.npy", "sky.npy")):
            print(f"{folder}: skipped (needs image.png, depth.npy and sky.npy)")
            continue
        print(simulate(folder, args.sigma, args.seed, args.view_size, args.metric), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
