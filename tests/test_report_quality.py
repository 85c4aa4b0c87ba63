"""Measures behind the report: holes (with and without truth), floaters, thinning of clouds."""

from __future__ import annotations

import numpy as np

from worldgen.report.quality import expected_surface, thin_cloud, view_measures
from worldgen.report.views import camera_at
from worldgen.types import DepthMap, GaussianCloud


def test_holes_count_empty_and_see_through_pixels():
    true = np.full((4, 4), 2.0)
    rendered = np.full((4, 4), 2.05)
    rendered[0] = np.inf  # nothing drawn: a hole
    rendered[1] = 10.0  # the backdrop seen through a gap (> 1.5 x the true distance): a hole
    rendered[2, :2] = 1.0  # something far in front of the surface: a floater, not a hole
    rgb = np.zeros((4, 4, 3))
    m = view_measures(rendered, np.isfinite(true), true_depth=true, rgb=rgb, true_rgb=rgb + 0.1, far=50.0)
    assert m["holes"] == 0.5
    assert m["floaters"] == 2 / 16
    assert abs(m["psnr_db"] - 20.0) < 1e-9
    # Without truth: the same render against an expected-surface mask, holes only.
    m = view_measures(rendered, np.ones((4, 4), bool), far=50.0)
    assert set(m) == {"holes"} and m["holes"] == 0.25  # 10 m is nearer than 1.5 x far: seen


def test_expected_surface_follows_the_capture_points_sky():
    d = np.full((32, 64), 5.0, np.float32)
    d[:16] = np.inf  # sky above the horizon
    depth = DepthMap(d, ~np.isfinite(d))
    up = expected_surface(depth, camera_at((0, 0, 0), 0.0, 60.0, 16, 8, 40.0))
    down = expected_surface(depth, camera_at((0, 0, 0), 0.0, -60.0, 16, 8, 40.0))
    assert not up.any() and down.all()


def test_thin_cloud_keeps_a_seeded_subset_and_grows_it():
    rng = np.random.default_rng(0)
    n = 400
    q = rng.normal(size=(n, 4))
    cloud = GaussianCloud.from_activated(
        rng.normal(size=(n, 3)),
        q / np.linalg.norm(q, axis=1, keepdims=True),
        rng.uniform(0.01, 0.1, (n, 3)),
        rng.uniform(0.2, 0.9, n),
        colors=rng.uniform(0, 1, (n, 3)),
    )
    assert thin_cloud(cloud, n) is cloud
    thin = thin_cloud(cloud, 100)
    assert len(thin) == 100 and np.array_equal(thin.means, thin_cloud(cloud, 100).means)
    kept = [int(np.nonzero((cloud.means == m).all(1))[0][0]) for m in thin.means[:10]]
    assert np.allclose(thin.scales[:10], 2.0 * cloud.scales[kept], rtol=1e-5)  # sqrt(400 / 100)
    assert np.array_equal(thin.sh[:10], cloud.sh[kept]) and np.allclose(thin.opacities[:10], cloud.opacities[kept])
