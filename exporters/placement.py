"""Fit a world inside a target's default camera far plane: sky dome placed, distant geometry folded.

A viewer's default camera clips everything beyond its far plane (Unity 1,000 m, Blender's camera
100 m, three.js 2,000 m, Godot 4,000 m), while a generated world can reach kilometres and its
sky dome lies beyond that. For a preset with a far plane F the writers therefore:

- put the sky dome at radius ``SKY_FRACTION * F`` (when it lies farther), and
- fold world geometry radially: a point at distance d from the capture point (the origin) keeps
  its direction and moves to ``r0 + w x / (1 + x)`` with ``x = (d - r0) / w`` when d > r0, where
  ``r0 = KEEP_FRACTION * F``, ``r1 = FOLD_FRACTION * F`` and ``w = r1 - r0``. The map is the
  identity up to r0, continuous with a continuous slope there, strictly increasing (so surfaces
  keep their order along every ray: no new occlusion) and bounded by r1 < the dome. A rational
  map rather than tanh: tanh saturates in floating point (every point beyond ~20 w would land
  exactly on r1 and overlapping far surfaces would z-fight), x / (1 + x) still separates points
  a million w away. Nothing is
  clipped; from the capture point the folded world looks exactly like the original, because
  every point stays on its own ray.

Folding happens only when some geometry lies beyond r1; worlds that already fit are untouched.
Splat clouds are folded the same way (:func:`fit_cloud`) for the splat formats.
The collision part is folded with the visible world, so what a player sees is what they hit.
"""

from __future__ import annotations

import numpy as np

from worldgen.types import GaussianCloud, Mesh, MeshScene

KEEP_FRACTION = 0.5
FOLD_FRACTION = 0.8
SKY_FRACTION = 0.9


def fold_radius(d: np.ndarray, r0: float, r1: float) -> tuple[np.ndarray, np.ndarray]:
    """Folded distances and the map's slope: (d', dd'/dd), both like ``d`` (float64).

    Args:
        d: distances from the capture point, metres. [...]
        r0: distances up to r0 are kept.
        r1: the bound every folded distance stays below (r1 > r0).
    """
    d = np.asarray(d, dtype=np.float64)
    w = r1 - r0
    x = np.maximum(d - r0, 0.0) / w
    far = d > r0
    out = np.where(far, r0 + w * x / (1.0 + x), d)
    slope = np.where(far, 1.0 / (1.0 + x) ** 2, 1.0)
    return out, slope


def _fold_mesh(mesh: Mesh, r0: float, r1: float) -> Mesh:
    v = mesh.vertices.astype(np.float64)
    d = np.linalg.norm(v, axis=1)
    d2, slope = fold_radius(d, r0, r1)
    g = np.where(d > 0, d2 / np.maximum(d, 1e-300), 1.0)
    v2 = v * g[:, None]
    normals = None
    if mesh.normals is not None:
        # The map f(v) = g(|v|) v has Jacobian J = g (I - r r^T) + slope r r^T (r = v/|v|);
        # normals transform by J^-T = (1/g)(I - r r^T) + (1/slope) r r^T, then renormalise.
        r = v / np.maximum(d, 1e-300)[:, None]
        n = mesh.normals.astype(np.float64)
        nr = np.sum(n * r, axis=1, keepdims=True) * r
        n2 = (n - nr) / g[:, None] + nr / np.maximum(slope, 1e-9)[:, None]
        ln = np.linalg.norm(n2, axis=1, keepdims=True)
        normals = np.where(ln > 1e-12, n2 / np.maximum(ln, 1e-300), n).astype(np.float32)
    return Mesh(v2.astype(np.float32), mesh.faces, normals, mesh.uvs, mesh.texture, mesh.vertex_colors)


def _scale_to_radius(mesh: Mesh, radius: float) -> Mesh:
    v = mesh.vertices.astype(np.float64)
    d = np.linalg.norm(v, axis=1)
    v2 = v * np.where(d > 0, radius / np.maximum(d, 1e-300), 1.0)[:, None]
    return Mesh(v2.astype(np.float32), mesh.faces, mesh.normals, mesh.uvs, mesh.texture, mesh.vertex_colors)


def fit_far_plane(scene: MeshScene, far_plane: float) -> tuple[MeshScene, dict]:
    """The scene placed for a camera whose far plane is ``far_plane`` metres (0 = no limit).

    Args:
        scene: world-frame parts; ``sky`` is the dome, every other part is geometry to fold.
        far_plane: the target's default camera far clip distance, metres; 0 leaves the scene as is.

    Returns:
        (scene, report) where report gives ``far_plane_m``, ``sky_radius_m`` (after),
        ``world_reach_m`` (farthest non-sky vertex before and after), ``folded`` (bool).
    """
    reach = max(
        (
            float(np.linalg.norm(m.vertices, axis=1).max())
            for k, m in scene.parts.items()
            if k != "sky" and m.n_vertices
        ),
        default=0.0,
    )
    sky = scene.parts.get("sky")
    sky_r = float(np.linalg.norm(sky.vertices, axis=1).max()) if sky is not None and sky.n_vertices else None
    report = {"far_plane_m": far_plane, "world_reach_m": [round(reach, 3)] * 2, "sky_radius_m": sky_r, "folded": False}
    if far_plane <= 0:
        return scene, report
    r0, r1, rs = KEEP_FRACTION * far_plane, FOLD_FRACTION * far_plane, SKY_FRACTION * far_plane
    fold = reach > r1
    scale_sky = sky_r is not None and sky_r > rs
    if not fold and not scale_sky:
        return scene, report
    parts = {}
    for name, mesh in scene.parts.items():
        if name == "sky":
            parts[name] = _scale_to_radius(mesh, rs) if scale_sky else mesh
        elif fold and mesh.n_vertices:
            parts[name] = _fold_mesh(mesh, r0, r1)
        else:
            parts[name] = mesh
    after = fold_radius(np.array([reach]), r0, r1)[0][0] if fold else reach
    report.update(
        folded=bool(fold),
        world_reach_m=[round(reach, 3), round(float(after), 3)],
        sky_radius_m=rs if scale_sky else sky_r,
    )
    return MeshScene(parts, scene.report), report


def fit_cloud(cloud: GaussianCloud, far_plane: float) -> tuple[GaussianCloud, dict]:
    """Splats placed for a camera whose far plane is ``far_plane`` metres (0 = no limit).

    The same fold as the mesh (:func:`fold_radius`, from the capture point), for every splat
    including the sky's (the cloud does not mark them; the fold keeps them behind the world
    because it is monotone): centres move along their rays and every axis of a splat scales by
    the centre's tangential factor d'/d, so each splat keeps its angular size from the capture
    point (its radial depth, invisible from there, is not squeezed further).

    Returns:
        (cloud, report) with ``reach_m`` (farthest centre before and after) and ``folded``.
    """
    d = np.linalg.norm(cloud.means.astype(np.float64), axis=1)
    reach = float(d.max()) if len(d) else 0.0
    report = {"far_plane_m": far_plane, "reach_m": [round(reach, 3)] * 2, "folded": False}
    if far_plane <= 0 or reach <= FOLD_FRACTION * far_plane:
        return cloud, report
    r0, r1 = KEEP_FRACTION * far_plane, FOLD_FRACTION * far_plane
    d2, _ = fold_radius(d, r0, r1)
    g = np.where(d > 0, d2 / np.maximum(d, 1e-300), 1.0)
    out = GaussianCloud(
        cloud.means * g[:, None],
        cloud.quats,
        cloud.log_scales + np.log(g)[:, None],
        cloud.opacity_logits,
        cloud.sh,
    )
    report.update(folded=True, reach_m=[round(reach, 3), round(float(d2.max()), 3)])
    return out, report
