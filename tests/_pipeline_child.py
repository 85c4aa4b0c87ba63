"""Runs one pipeline in a child process, for the kill-and-resume test.

Usage: python _pipeline_child.py PANORAMA DEPTH OUT [SLEEP_SECONDS]
Registers a deterministic test backend for the gaussians stage that sleeps before returning,
so the parent can kill the run while that stage is in flight.
"""

import sys
import time

import numpy as np

from worldgen import GaussianCloud
from worldgen.geometry import equirect_directions
from worldgen.pipeline import RunOptions, run_pipeline
from worldgen.registry import Backend, Request, StageResult, register_backend


def _slow_points(ctx):
    depth = ctx.inputs["depth"]
    pano = ctx.inputs["panorama"]
    dirs = equirect_directions(pano.height)
    valid = depth.valid
    pts = dirs[valid] * depth.depth[valid][:, None]
    n = len(pts)
    rng = np.random.default_rng(ctx.seed)
    cloud = GaussianCloud(
        pts,
        np.tile([1.0, 0, 0, 0], (n, 1)),
        np.full((n, 3), -3.0),
        rng.normal(size=n),
        (pano.image[valid][:, None, :] - 0.5) / 0.2820948,
    )
    for i in range(10):
        ctx.progress(i / 10, "sleeping")
        time.sleep(SLEEP / 10)
    return StageResult(artifacts={"gaussians": cloud}, files={"extra/points.txt": str(n).encode()})


if __name__ == "__main__":
    SLEEP = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    register_backend(Backend("gaussians", "test_slow", _slow_points, "test backend"))
    run_pipeline(
        Request(panorama=sys.argv[1], depth=sys.argv[2], seed=7),
        sys.argv[3],
        RunOptions(until="gaussians", backends={"gaussians": "test_slow"}),
    )
