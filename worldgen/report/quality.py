"""Render a run's mesh and splats at preview cameras and score them, with or without ground truth.

Renderers are the project's own: the mesh is ray cast with Open3D (worldgen.evaluation.geometry,
textures sampled as an engine would), the splats go through worldgen.splats.rasterize (gsplat on
CUDA, the PyTorch rasterizer elsewhere), and procedural worlds give exact colour and depth at any
pose (worldgen.procedural.render_view).

Measures per view (see docs/report.md):

* **PSNR** (dB) of the render against the true view (procedural worlds only). Holes render
  magenta, so they cost PSNR too.
* **holes**: the share of the view's pixels where a surface should be seen but the render shows
  nothing, or something more than ``SEE_THROUGH`` times farther than the true surface (a gap
  through which the sky dome or a far backdrop shows). With ground truth "should" comes from
  the true depth. Without truth it comes from the capture point's depth map: a pixel whose
  direction is not sky there expects a surface. That ignores parallax at silhouettes against
  the sky (a 1 m step moves them by a few pixels), so truth-free holes are an estimate.
* **floaters** (with truth): worldgen.evaluation.views.holes_and_floaters' floaters.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..evaluation.geometry import _Caster, _shade_hits
from ..evaluation.views import holes_and_floaters, psnr
from ..geometry.equirect import direction_to_pixel, perspective_directions
from ..types import Camera, DepthMap, GaussianCloud, MeshScene

MAGENTA = (1.0, 0.0, 1.0)
"""Background of every render: what a viewer sees through a hole stands out."""

SEE_THROUGH = 1.5
"""A render deeper than this factor times the true surface distance looks through a gap."""


def render_mesh(scene: MeshScene, cameras: list[Camera]) -> dict[str, np.ndarray]:
    """Ray cast the textured parts an engine shows ("world", "background", "sky") through cameras.

    Returns:
        dict: **rgb** sRGB [C, H, W, 3] float32 (magenta where nothing is hit; faces seen from
        behind tinted red); **depth** Euclidean distance to the first "world" or "background"
        hit, metres, +inf where the ray hits only the sky or nothing [C, H, W] float32.
    """
    # the background part (the completed hidden surfaces) is in every exported GLB/USD: a preview
    # without it would show holes behind every occluder that no engine user sees
    names = [p for p in ("world", "background", "sky") if p in scene]
    meshes = [scene[p] for p in names]
    caster = _Caster([(m.vertices, m.faces) for m in meshes])
    rgbs, depths = [], []
    for cam in cameras:
        dirs = perspective_directions(cam)
        hit = caster.cast(np.asarray(cam.cam_to_world)[:3, 3], dirs)
        rgb, got = _shade_hits(meshes, hit, dirs, MAGENTA, tint_back_faces=True)
        surface_ids = [i for i, n in enumerate(names) if n != "sky"]
        world = got & np.isin(hit["geometry_ids"].astype(np.int64), surface_ids)
        rgbs.append(np.clip(rgb, 0, 1))
        depths.append(np.where(world, hit["t_hit"], np.inf).astype(np.float32))
    return {"rgb": np.stack(rgbs).astype(np.float32), "depth": np.stack(depths)}


def thin_cloud(cloud: GaussianCloud, max_splats: int, seed: int = 0) -> GaussianCloud:
    """At most ``max_splats`` splats: a seeded uniform subset whose splats are enlarged by
    sqrt(total / kept) across, so the surface stays covered (coarser, not holed). The cloud
    itself when it is small enough. Used where a picture does not need every splat: fly-through
    frames, the browser viewer."""
    n = len(cloud)
    if n <= max_splats:
        return cloud
    if max_splats < 1:
        raise InputError(f"max_splats {max_splats} must be at least 1")
    idx = np.sort(np.random.default_rng(seed).choice(n, max_splats, replace=False))
    grow = np.float32(0.5 * np.log(n / max_splats))
    return GaussianCloud(
        cloud.means[idx], cloud.quats[idx], cloud.log_scales[idx] + grow, cloud.opacity_logits[idx], cloud.sh[idx]
    )


def render_splats(cloud: GaussianCloud, cameras: list[Camera]) -> dict[str, np.ndarray]:
    """Rasterize the splats (magenta behind them).

    Returns:
        dict: **rgb** [C, H, W, 3], **depth** (+inf where alpha < 0.5) [C, H, W], **alpha** [C, H, W].
    """
    from ..splats.rasterize import render_cloud

    return render_cloud(cloud, cameras, background=MAGENTA)


def render_truth(spec_json: dict, eye_height: float, cameras: list[Camera]) -> dict[str, np.ndarray]:
    """Exact views of a procedural world (no antialiasing, as the fast preset renders).

    Returns:
        dict: **rgb** sRGB [C, H, W, 3]; **depth** Euclidean metres, +inf on sky [C, H, W].
    """
    from ..procedural import build_scene, render_view
    from ..procedural.spec import SceneSpec

    scene = build_scene(SceneSpec.from_json(spec_json), eye_height)
    out = [render_view(scene, cam, antialias=False) for cam in cameras]
    return {"rgb": np.stack([np.clip(o[0], 0, 1) for o in out]), "depth": np.stack([o[1] for o in out])}


def expected_surface(depth: DepthMap, camera: Camera) -> np.ndarray:
    """Truth-free stand-in for "a surface is seen here": the capture point's depth map is not sky
    in the pixel's direction (nearest panorama pixel). [H, W] bool"""
    h, w = depth.shape
    x, y = direction_to_pixel(perspective_directions(camera), w, h)
    col = np.clip(x.astype(np.int64), 0, w - 1)
    row = np.clip(y.astype(np.int64), 0, h - 1)
    return ~depth.sky[row, col]


def view_measures(
    rendered_depth: np.ndarray,
    surface: np.ndarray,
    *,
    true_depth: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    true_rgb: np.ndarray | None = None,
    far: float,
) -> dict[str, float]:
    """Measures of one rendered view.

    Args:
        rendered_depth: Euclidean metres, +inf where nothing of the world is seen. [H, W]
        surface: where a surface should be seen (true depth finite, or :func:`expected_surface`). [H, W] bool
        true_depth: exact depth (+inf on sky), when the world has ground truth. [H, W]
        alpha: the render's opacity (splats); None for a mesh (opaque where depth is finite). [H, W]
        rgb, true_rgb: render and truth, sRGB [0, 1], for PSNR. [H, W, 3]
        far: the world's farthest surface, metres (stands in for the true depth without truth).

    Returns:
        dict: **holes** (share of pixels), and with truth **psnr_db** and **floaters**.
    """
    ref = (
        np.where(np.isfinite(true_depth), true_depth, far)
        if true_depth is not None
        else np.full_like(rendered_depth, far)
    )
    seen = np.isfinite(rendered_depth) & (rendered_depth <= SEE_THROUGH * ref)
    out = {"holes": float((surface & ~seen).mean())}
    if true_depth is not None:
        a = alpha if alpha is not None else np.isfinite(rendered_depth).astype(np.float32)
        out["floaters"] = holes_and_floaters(
            np.where(np.isfinite(rendered_depth), rendered_depth, 0.0), a, true_depth, far=far
        )["floaters"]
    if rgb is not None and true_rgb is not None:
        out["psnr_db"] = psnr(rgb, true_rgb)
    return out
