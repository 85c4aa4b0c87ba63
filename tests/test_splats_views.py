"""Training views: sphere coverage, capture views against the panorama, warped views against geometry."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.geometry import equirect_directions
from worldgen.splats.views import capture_directions, capture_views, view_camera, warped_views
from worldgen.types import DepthMap, Panorama

_LO, _HI = np.array([-3.0, -1.6, -4.0]), np.array([3.0, 1.4, 3.5])


def _box_depth(dirs: np.ndarray, origin=np.zeros(3)) -> np.ndarray:
    """Distance from ``origin`` along unit ``dirs`` to the inside of the room box. [...]"""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dirs > 0, (_HI - origin) / dirs, (_LO - origin) / dirs)
    return np.where(np.isfinite(t) & (t > 0), t, np.inf).min(-1)


def _box_world(h: int):
    d = equirect_directions(h).astype(np.float64)
    t = _box_depth(d)
    p = d * t[..., None]
    col = np.clip(0.5 + 0.3 * np.sin(p * np.array([2.1, 3.3, 1.7])), 0, 1).astype(np.float32)
    return Panorama(col), DepthMap(t.astype(np.float32), np.zeros(t.shape, bool))


def test_capture_views_cover_the_sphere_with_overlap(rng):
    dirs = rng.normal(size=(3000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    seen = np.zeros(len(dirs), int)
    for yaw, pitch in capture_directions():
        cam = view_camera(yaw, pitch, 32)
        local = dirs @ cam.cam_to_world[:3, :3]
        z = -local[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = (z > 0) & (np.abs(local[:, 0] / z) <= 1) & (np.abs(local[:, 1] / z) <= 1)
        seen += inside
    assert seen.min() >= 1  # every direction is seen
    assert (seen >= 2).mean() > 0.5  # most directions are seen twice (views overlap)
    assert len(capture_directions()) == 18


def test_capture_view_depth_is_camera_z_of_the_surface():
    pano, depth = _box_world(64)
    views = capture_views(pano, depth, 24)
    assert len(views) == 18
    for v in views[::5]:
        assert v.image.shape == (24, 24, 3) and v.depth.shape == (24, 24)
        assert v.color_mask.all() and v.depth_mask.all() and not v.sky.any()
        # Unproject each pixel with its z-depth: the point lies on the box surface.
        cam = v.camera
        u = (np.arange(24) + 0.5 - cam.cx) / cam.fx
        w = (np.arange(24) + 0.5 - cam.cy) / cam.fy
        local = np.stack(np.broadcast_arrays(u[None, :], -w[:, None], -np.ones((24, 24))), -1) * v.depth[..., None]
        world = local @ cam.cam_to_world[:3, :3].T
        r = np.linalg.norm(world, axis=-1)
        np.testing.assert_allclose(r, _box_depth(world / r[..., None]), rtol=0.08)


def test_warped_view_matches_geometry_and_masks_holes():
    pano, depth = _box_world(128)
    off = np.array([[0.3, 0.0, 0.2]])
    views = warped_views(pano, depth, 48, off, directions=[(30.0, -20.0)])
    v = views[0]
    assert v.kind == "warped"
    assert v.color_mask.mean() > 0.9 and v.depth_mask.sum() == v.color_mask.sum()
    cam = v.camera
    np.testing.assert_allclose(cam.cam_to_world[:3, 3], off[0])
    u = (np.arange(48) + 0.5 - cam.cx) / cam.fx
    w = (np.arange(48) + 0.5 - cam.cy) / cam.fy
    rays = np.stack(np.broadcast_arrays(u[None, :], -w[:, None], -np.ones((48, 48))), -1) @ cam.cam_to_world[:3, :3].T
    zlen = np.linalg.norm(rays, axis=-1)
    truth_z = _box_depth(rays / zlen[..., None], off[0]) / zlen
    m = v.depth_mask
    err = np.abs(v.depth[m] - truth_z[m]) / truth_z[m]
    assert np.median(err) < 0.03


def test_warped_view_masks_disocclusion_behind_a_near_object():
    # A ball 1.5 m ahead: moving sideways uncovers wall the capture point never saw.
    h = 128
    d = equirect_directions(h).astype(np.float64)
    t = _box_depth(d)
    c, r = np.array([0.0, 0.0, -1.5]), 0.5
    b = d @ c
    disc = b * b - (c @ c - r * r)
    ts = np.where(disc > 0, b - np.sqrt(np.maximum(disc, 0)), np.inf)
    t = np.minimum(t, np.where(ts > 0, ts, np.inf))
    pano = Panorama(np.full((h, 2 * h, 3), 0.5, np.float32))
    depth = DepthMap(t.astype(np.float32), np.zeros(t.shape, bool))
    shifted = warped_views(pano, depth, 48, np.array([[0.4, 0.0, 0.0]]), directions=[(0.0, 0.0)])[0]
    still = warped_views(pano, depth, 48, np.zeros((1, 3)), directions=[(0.0, 0.0)])[0]
    assert (~shifted.color_mask).sum() > 3 * max(1, (~still.color_mask).sum())
    # the unsupervised pixels hug the ball's silhouette (depth near the ball on one side)
    assert (~shifted.color_mask).sum() > 20


def test_zero_offset_warp_reproduces_capture_view():
    pano, depth = _box_world(96)
    cap = capture_views(pano, depth, 32, directions=[(10.0, 5.0)])[0]
    war = warped_views(pano, depth, 32, np.zeros((1, 3)), directions=[(10.0, 5.0)])[0]
    m = war.color_mask
    assert m.mean() > 0.9
    assert np.abs(war.image[m] - cap.image[m]).mean() < 0.05


def test_sky_pixels_marked():
    pano, depth = _box_world(32)
    d = depth.depth.copy()
    d[:4] = np.inf
    sky_depth = DepthMap.from_array(d)
    v = capture_views(pano, sky_depth, 16, directions=[(0.0, 90.0)])[0]
    assert v.sky.any() and not v.depth_mask[v.sky].any() and (v.depth[v.sky] == 0).all()


def test_errors():
    pano, depth = _box_world(32)
    _, small = _box_world(16)
    with pytest.raises(InputError, match="resample"):
        capture_views(pano, small, 16)
    with pytest.raises(InputError, match="at least 8"):
        capture_views(pano, depth, 4)
