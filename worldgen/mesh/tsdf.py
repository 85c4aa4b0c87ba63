"""The ``tsdf`` extractor: depth fused in a truncated signed-distance volume, then meshed and textured.

1. Cut perspective depth views from the panorama (a cube map: six 90° views tile the sphere;
   the views share the panorama's centre, so each view's depth is exact) and convert their ray
   distances to z-depth.
2. Integrate them into Open3D's ``UniformTSDFVolume`` (the scalable and voxel-block-grid
   volumes of Open3D 0.20 were measured returning empty meshes; the uniform one works), over a
   cube around the capture point sized to the ``clip_percentile`` of the finite depth.
3. Marching cubes, drop components smaller than ``min_component`` of the surface, simplify to
   the triangle budget.
4. UV atlas with xatlas, run per chunk (the mesh is split by the direction of each triangle
   from the capture point into pieces of at most ``atlas_chunk`` triangles) in a child process
   with a timeout: xatlas was measured slow on 52k triangles and crashing on 82k, and a crash
   must not take the pipeline down. Chunk atlases are packed side by side into one texture.
5. Bake: every texel's surface point (found by ray casting the flattened UV mesh) takes the
   panorama colour along its ray from the capture point; islands are dilated by
   ``padding`` texels so bilinear lookups and mipmaps never bleed background into charts.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._check import check_rgbd
from ..errors import BackendUnavailableError, InputError, MissingDependencyError
from ..geometry.equirect import direction_to_pixel, equirect_to_perspective, look_rotation, sample_equirect
from ..stages.photo import backdrop_mask
from ..types import Camera, DepthMap, Mesh, MeshScene, Panorama, SemanticLayers
from .collision import collision_from_grid
from .sheet import sky_dome
from .simplify import compact, simplify, vertex_normals
from .texture import dilate_islands, panorama_texture

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TSDFConfig:
    """Options of the ``tsdf`` extractor.

    Args:
        resolution: voxels along each side of the volume (default 320; memory grows with its cube).
        clip_percentile: the volume is a cube of half-side = this percentile of finite depth x 1.05;
            farther surfaces are left out (default 99).
        view_size: pixels per side of each cube-direction depth view; 0 = automatic (fine
            enough that rays land under half a voxel apart at the volume's edge).
        view_fov_deg: field of view of each of the six views, degrees; over 90 so they overlap
            (default 100).
        trunc_voxels: truncation distance in voxels (default 4).
        min_component: components with fewer triangles than this share of the mesh are dropped
            (default 0.002).
        max_triangles: triangle budget of the "world" part (default 100000).
        atlas: "box" (default): charts are connected faces sharing a dominant normal axis,
            projected onto that axis plane and shelf-packed (vectorised, about a second);
            "xatlas": xatlas charts per chunk in child processes (better charts, but measured
            ~4 s per 9k triangles on 2 cores, so 100k triangles take ~25 s).
        atlas_chunk: most triangles handed to one xatlas call (default 12000).
        atlas_timeout_s: seconds one xatlas call may take before the extractor gives up (default 120).
        texture_size: side of the baked square texture, texels, <= 4096 (default 2048).
        padding: texels of dilation around every chart (default 4).
        sky: add the "sky" dome part (default True).
        sky_radius: dome radius, metres; 0 = 1.5 x the farthest finite depth, at least 10 m.
        collision_triangles: budget of the "collision" part; 0 = none (default 20000).
    """

    resolution: int = 320
    clip_percentile: float = 99.0
    view_size: int = 0
    view_fov_deg: float = 100.0
    trunc_voxels: float = 4.0
    min_component: float = 0.002
    max_triangles: int = 100_000
    atlas: Literal["box", "xatlas"] = "box"
    atlas_chunk: int = 12_000
    atlas_timeout_s: float = 120.0
    texture_size: int = 2048
    padding: int = 4
    sky: bool = True
    sky_radius: float = 0.0
    collision_triangles: int = 20_000


def build_tsdf(
    panorama: Panorama,
    depth: DepthMap,
    config: TSDFConfig = TSDFConfig(),
    semantics: SemanticLayers | None = None,
    eye_height: float = 1.6,
) -> MeshScene:
    """Fuse the panorama's depth into a TSDF and return textured "world", "sky" and "collision" parts.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres, same size (+inf = sky).
        config: see :class:`TSDFConfig`.
        semantics, eye_height: accepted for a uniform extractor signature.

    Returns:
        MeshScene with a report (voxel size, triangles before/after, texture size, timings).
    """
    _check(panorama, depth, config)
    if not depth.valid.any():
        raise InputError("the depth map has no finite surface to fuse; the tsdf extractor needs depth")
    t0 = time.perf_counter()
    H = depth.shape[0]
    half = 1.05 * float(np.percentile(depth.depth[depth.valid], config.clip_percentile))
    voxel = 2 * half / config.resolution
    # Views fine enough that neighbouring rays land less than half a voxel apart at the far
    # edge of the volume; coarser views leave voxels without a single observation (holes).
    size = config.view_size or max(16, H // 2, math.ceil(1.6 * config.resolution * config.view_fov_deg / 90))
    v, f = _fuse(depth, half, config, size)
    t_fuse = time.perf_counter() - t0
    n_mc = int(len(f))
    v, f = _drop_small(v, f, config.min_component)
    v, f = simplify(v, f, config.max_triangles, preserve_border=False)
    t_simp = time.perf_counter() - t0 - t_fuse
    if config.atlas == "xatlas":
        uvs, vmap, faces_uv, layout = atlas(v, f, config.atlas_chunk, config.atlas_timeout_s)
    else:
        uvs, vmap, faces_uv, layout = box_atlas(v, f, config.texture_size, config.padding)
    t_atlas = time.perf_counter() - t0 - t_fuse - t_simp
    verts = v[vmap]
    texture = bake_from_panorama(panorama, verts, faces_uv, uvs, config.texture_size, config.padding)
    normals = vertex_normals(v, f)[vmap]
    parts = {"world": Mesh(verts.astype(np.float32), faces_uv, normals, uvs, texture)}
    far = float(depth.depth[depth.valid].max())
    sky_radius = config.sky_radius if config.sky_radius > 0 else max(10.0, 1.5 * far)
    if config.sky and depth.sky.any():
        parts["sky"] = sky_dome(depth.sky, sky_radius, 256, panorama_texture(panorama, 4096))
    if config.collision_triangles:
        # Same ground-and-obstacles grid as the sheet's: robust to budget and cheap.
        from .sheet import SheetConfig

        solid = depth.valid & ~backdrop_mask(semantics, depth.shape)  # a photo world's backdrop is scenery
        parts["collision"] = collision_from_grid(depth.depth, solid, config.collision_triangles, SheetConfig())
    report = {
        "extractor": "tsdf",
        "voxel_m": round(voxel, 5),
        "volume_half_side_m": round(half, 3),
        "views": 6,
        "triangles_marching_cubes": n_mc,
        "triangles_before": n_mc,
        "triangles_after": int(len(faces_uv)),
        "atlas": config.atlas,
        "atlas_charts" if config.atlas == "box" else "atlas_chunks": layout,
        "texture_size": [config.texture_size, config.texture_size],
        "sky_radius_m": round(sky_radius, 3) if "sky" in parts else None,
        "parts": {k: {"vertices": m.n_vertices, "triangles": m.n_faces} for k, m in parts.items()},
        "seconds": {
            "fuse": round(t_fuse, 3),
            "simplify": round(t_simp, 3),
            "atlas": round(t_atlas, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    return MeshScene(parts, report)


def _check(panorama: Panorama, depth: DepthMap, config: TSDFConfig) -> None:
    check_rgbd(panorama, depth)
    if not 16 <= config.resolution <= 1024:
        raise InputError(f"resolution {config.resolution} must lie in 16..1024 voxels")
    if not 8 <= config.texture_size <= 4096:
        raise InputError(f"texture_size {config.texture_size} must lie in 8..4096")
    if not 0 < config.clip_percentile <= 100:
        raise InputError("clip_percentile must lie in (0, 100]")
    if not 90 <= config.view_fov_deg < 150:
        raise InputError(f"view_fov_deg {config.view_fov_deg} must lie in [90, 150)")
    if config.atlas not in ("box", "xatlas"):
        raise InputError(f"atlas={config.atlas!r}: use 'box' or 'xatlas'")
    if config.max_triangles < 100 or config.atlas_chunk < 100:
        raise InputError("max_triangles and atlas_chunk must be at least 100")


def _o3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("open3d", "mesh", "TSDF fusion") from exc
    return o3d


def _fuse(depth: DepthMap, half: float, cfg: TSDFConfig, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrate six cube-map depth views; marching cubes. Returns (vertices [V, 3], faces [F, 3])."""
    o3d = _o3d()
    voxel = 2 * half / cfg.resolution
    vol = o3d.pipelines.integration.UniformTSDFVolume(
        length=2 * half,
        resolution=cfg.resolution,
        sdf_trunc=cfg.trunc_voxels * voxel,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.NoColor,
        origin=np.array([-half, -half, -half], np.float64).reshape(3, 1),
    )
    d_pano = np.where(depth.valid, depth.depth, 0.0).astype(np.float32)
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # glTF camera (-Z forward, +Y up) -> OpenCV
    colour = o3d.geometry.Image(np.zeros((size, size, 3), np.uint8))
    for cam in _views(size, cfg.view_fov_deg):
        ray_d = equirect_to_perspective(d_pano, cam, "nearest")
        # Ray distance -> z-depth: z = d * cos(angle to the optical axis).
        u = (np.arange(size) + 0.5 - cam.cx) / cam.fx
        vv = (np.arange(size) + 0.5 - cam.cy) / cam.fy
        cosang = 1.0 / np.sqrt(1.0 + u[None, :] ** 2 + vv[:, None] ** 2)
        z = (ray_d * cosang).astype(np.float32)
        z[(ray_d <= 0) | (ray_d > half * math.sqrt(3))] = 0.0
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            colour, o3d.geometry.Image(z), depth_scale=1.0, depth_trunc=float(half * 2), convert_rgb_to_intensity=False
        )
        intr = o3d.camera.PinholeCameraIntrinsic(size, size, cam.fx, cam.fy, cam.cx, cam.cy)
        extr = np.linalg.inv(cam.cam_to_world @ flip)
        vol.integrate(rgbd, intr, extr)
    mesh = vol.extract_triangle_mesh()
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.triangles, np.int64)


_CUBE_DIRS = ((1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0))


def _views(size: int, fov_deg: float) -> list[Camera]:
    """Six cube-direction cameras at the origin, widened past 90° so neighbouring views overlap:
    the volume only integrates voxels that project strictly inside a view, so exact 90° faces
    leave a seam of unobserved voxels (measured: hole arcs along the cube edges)."""
    cams = []
    for fwd in _CUBE_DIRS:
        m = np.eye(4)
        m[:3, :3] = look_rotation(np.array(fwd))
        cams.append(Camera.perspective(size, size, fov_deg, m))
    return cams


def _drop_small(v: np.ndarray, f: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove connected components with fewer than ``share`` x all triangles."""
    if not len(f):
        raise BackendUnavailableError("TSDF fusion produced an empty mesh; check that the depth is metric and finite")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v)))
    _, lab = connected_components(g, directed=False)
    face_lab = lab[f[:, 0]]
    sizes = np.bincount(face_lab)
    keep = sizes[face_lab] >= max(1, share * len(f))
    return compact(v, f[keep])


# --------------------------------------------------------------------------------------------
# UV atlas
# --------------------------------------------------------------------------------------------


def _xatlas_chunk(v: np.ndarray, f: np.ndarray, conn) -> None:
    """Child-process body: one xatlas parametrisation, sent back as (vmapping, indices, uvs)."""
    import xatlas

    atlas_ = xatlas.Atlas()
    atlas_.add_mesh(v.astype(np.float32), f.astype(np.uint32))
    co = xatlas.ChartOptions()
    co.max_iterations = 1
    po = xatlas.PackOptions()
    po.padding = 2
    po.bilinear = True
    po.resolution = 1024
    atlas_.generate(co, po)
    vmap, idx, uv = atlas_[0]
    conn.send((np.asarray(vmap, np.int64), np.asarray(idx, np.int64), np.asarray(uv, np.float64)))
    conn.close()


def _run_isolated(jobs: list[tuple[np.ndarray, np.ndarray]], timeout_s: float, workers: int = 2) -> list:
    """Run :func:`_xatlas_chunk` on each job in its own child process, ``workers`` at a time.

    A child that dies (xatlas segfaults on some large meshes) or a batch that overruns
    ``timeout_s`` stops every child this call started and raises BackendUnavailableError.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    pending = list(range(len(jobs)))
    running: dict[int, tuple] = {}
    results: dict[int, tuple] = {}
    deadline = time.monotonic() + timeout_s

    def stop_all():
        for proc, _ in running.values():
            proc.terminate()
            proc.join()

    while pending or running:
        while pending and len(running) < workers:
            k = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_xatlas_chunk, args=(*jobs[k], send), daemon=True)
            proc.start()
            send.close()
            running[k] = (proc, recv)
        for k in list(running):
            proc, recv = running[k]
            if recv.poll(0.02):
                try:
                    results[k] = recv.recv()
                except EOFError:
                    results[k] = None
                proc.join()
                del running[k]
                if results[k] is None:
                    stop_all()
                    raise BackendUnavailableError(
                        f"xatlas crashed (exit code {proc.exitcode}) while building the UV atlas; "
                        "lower atlas_chunk (e.g. 6000)"
                    )
            elif not proc.is_alive() and not recv.poll(0):
                del running[k]
                stop_all()
                raise BackendUnavailableError(
                    f"xatlas crashed (exit code {proc.exitcode}) while building the UV atlas; "
                    "lower atlas_chunk (e.g. 6000)"
                )
        if time.monotonic() > deadline:
            stop_all()
            raise BackendUnavailableError(
                f"xatlas did not finish within {timeout_s:.0f} s; lower max_triangles or atlas_timeout_s"
            )
    return [results[k] for k in range(len(jobs))]


def _chunks(v: np.ndarray, f: np.ndarray, max_tris: int) -> list[np.ndarray]:
    """Split faces into spatially coherent groups of at most ``max_tris``: by the cube face of the
    direction from the capture point to each triangle, then recursively by median splits."""
    c = v[f].mean(1)
    dirn = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    axis = np.abs(dirn).argmax(1)
    face_id = axis * 2 + (dirn[np.arange(len(dirn)), axis] > 0)
    out = []
    for k in range(6):
        idx = np.nonzero(face_id == k)[0]
        stack = [idx] if len(idx) else []
        while stack:
            cur = stack.pop()
            if len(cur) <= max_tris:
                out.append(cur)
                continue
            pts = c[cur]
            ax = int(np.ptp(pts, axis=0).argmax())
            order = np.argsort(pts[:, ax], kind="stable")
            mid = len(cur) // 2
            stack += [cur[order[:mid]], cur[order[mid:]]]
    return out


def atlas(v: np.ndarray, f: np.ndarray, chunk: int, timeout_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """UV atlas over the whole mesh from per-chunk xatlas runs packed on a grid of tiles.

    Args:
        v: vertices, metres. [V, 3]
        f: faces. [F, 3]
        chunk: most triangles per xatlas call.
        timeout_s: seconds allowed for all xatlas calls together.

    Returns:
        (uvs [V', 2] float32 in [0, 1], vmapping [V'] int64 into ``v``, faces [F, 3] int32
        indexing the V' vertices, number of chunks).
    """
    try:
        import xatlas  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("xatlas", "mesh", "UV atlas of TSDF meshes") from exc
    groups = _chunks(v, f, chunk)
    jobs = []
    for g in groups:
        vv, ff, orig = compact(v, f[g], np.arange(len(v)))
        jobs.append((vv, ff, orig, g))
    results = _run_isolated([(vv, ff) for vv, ff, _, _ in jobs], timeout_s)
    n = len(jobs)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    all_uv, all_map, all_f = [], [], np.zeros((len(f), 3), np.int64)
    base = 0
    for k, ((_vv, _ff, orig, g), (vmap, idx, uv)) in enumerate(zip(jobs, results)):
        tx, ty = k % cols, k // cols
        # Each chunk's atlas fills one tile; a 1/64-tile margin keeps tiles' dilation apart.
        m = 1.0 / 64
        u = (tx + m + uv[:, 0] * (1 - 2 * m)) / cols
        w = (ty + m + uv[:, 1] * (1 - 2 * m)) / rows
        all_uv.append(np.stack([u, w], 1))
        all_map.append(orig[vmap])
        all_f[g] = idx.reshape(-1, 3) + base
        base += len(vmap)
    uvs = np.concatenate(all_uv).astype(np.float32)
    return uvs, np.concatenate(all_map), all_f.astype(np.int32), n


def box_atlas(v: np.ndarray, f: np.ndarray, size: int, padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Box-projection UV atlas: charts of edge-connected faces with the same dominant normal axis.

    Each chart is projected orthographically onto its axis plane (stretch at most sqrt(3), no
    flips within a chart) and the charts' bounding boxes are shelf-packed into a square, with
    ``padding`` + 1 texels between them, at the largest texel density that fits.

    Args:
        v: vertices, metres. [V, 3]
        f: faces. [F, 3]
        size: atlas side, texels.
        padding: texels of gutter around each chart.

    Returns:
        (uvs [V', 2] float32 in [0, 1], vmapping [V'] int64 into ``v``, faces [F, 3] int32,
        number of charts).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    axis = np.abs(n).argmax(1)
    cls = axis * 2 + (n[np.arange(len(n)), axis] > 0)
    # Face adjacency through shared edges, only between faces of the same class.
    nf = len(f)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e.sort(1)
    fid = np.tile(np.arange(nf), 3)
    key = e[:, 0] * (len(v) + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    ks, fs = key[order], fid[order]
    same = (ks[1:] == ks[:-1]) & (cls[fs[1:]] == cls[fs[:-1]])
    a, b = fs[:-1][same], fs[1:][same]
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(nf, nf))
    n_ch, chart = connected_components(g, directed=False)
    # Split vertices per chart.
    corner_v = f.reshape(-1)
    corner_c = np.repeat(chart, 3)
    pair = corner_v.astype(np.int64) * n_ch + corner_c
    uniq, inv = np.unique(pair, return_inverse=True)
    vmap = uniq // n_ch
    vchart = uniq % n_ch
    faces = inv.reshape(-1, 3).astype(np.int32)
    # Orthographic projection onto the chart's axis plane.
    ch_axis = np.zeros(n_ch, np.int64)
    ch_axis[chart] = axis
    ax = ch_axis[vchart]
    p = v[vmap]
    uo = np.where(ax == 0, p[:, 2], p[:, 0])
    vo = np.where(ax == 1, p[:, 2], p[:, 1])
    lo_u = np.full(n_ch, np.inf)
    lo_v = np.full(n_ch, np.inf)
    hi_u = np.full(n_ch, -np.inf)
    hi_v = np.full(n_ch, -np.inf)
    np.minimum.at(lo_u, vchart, uo)
    np.minimum.at(lo_v, vchart, vo)
    np.maximum.at(hi_u, vchart, uo)
    np.maximum.at(hi_v, vchart, vo)
    wm, hm = hi_u - lo_u, hi_v - lo_v  # chart extents, metres
    gutter = padding + 1
    density = math.sqrt(0.6 * size * size / max(float(((wm + 1e-9) * (hm + 1e-9)).sum()), 1e-12))
    for _ in range(60):
        wt = np.ceil(wm * density) + 2 * gutter
        ht = np.ceil(hm * density) + 2 * gutter
        pos = _shelf_pack(wt, ht, size)
        if pos is not None:
            break
        density *= 0.93
    else:
        raise BackendUnavailableError(
            f"{n_ch} charts do not fit a {size}x{size} texture; raise texture_size or lower max_triangles"
        )
    ox, oy = pos[:, 0] + gutter, pos[:, 1] + gutter
    tu = (ox[vchart] + (uo - lo_u[vchart]) * density) / size
    tv = (oy[vchart] + (vo - lo_v[vchart]) * density) / size
    uvs = np.stack([tu, tv], 1).astype(np.float32)
    return uvs, vmap.astype(np.int64), faces, int(n_ch)


def _shelf_pack(w: np.ndarray, h: np.ndarray, size: int) -> np.ndarray | None:
    """Shelf packing, tallest first: (x, y) of each rectangle's corner [N, 2], or None if it overflows.

    A loop over charts (thousands, not pixels); each step is O(1).
    """
    order = np.argsort(-h, kind="stable")
    pos = np.zeros((len(w), 2))
    x = y = shelf_h = 0.0
    for i in order:
        wi, hi = float(w[i]), float(h[i])
        if wi > size:
            return None
        if x + wi > size:
            y += shelf_h
            x, shelf_h = 0.0, 0.0
        if y + hi > size:
            return None
        pos[i] = (x, y)
        x += wi
        shelf_h = max(shelf_h, hi)
    return pos


# --------------------------------------------------------------------------------------------
# Texture bake
# --------------------------------------------------------------------------------------------


def bake_from_panorama(
    panorama: Panorama, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int, padding: int
) -> np.ndarray:
    """Colour every texel with the panorama pixel its surface point is seen through.

    Args:
        panorama: the capture.
        vertices: positions, metres. [V, 3]
        faces: triangles. [F, 3] int
        uvs: atlas coordinates, (0, 0) top-left. [V, 2]
        size: texture side, texels.
        padding: dilation rings around charts.

    Returns:
        [size, size, 3] uint8 sRGB.
    """
    o3d = _o3d()
    scene = o3d.t.geometry.RaycastingScene()
    flat = np.concatenate([uvs.astype(np.float32), np.zeros((len(uvs), 1), np.float32)], 1)
    scene.add_triangles(o3d.core.Tensor(flat), o3d.core.Tensor(faces.astype(np.uint32)))
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    U, V = np.meshgrid(c, c)
    rays = np.stack([U, V, np.ones_like(U), np.zeros_like(U), np.zeros_like(U), -np.ones_like(U)], -1)
    hit = scene.cast_rays(o3d.core.Tensor(rays.reshape(-1, 6)))
    prim = hit["primitive_ids"].numpy().astype(np.int64)
    got = np.isfinite(hit["t_hit"].numpy())
    bu = hit["primitive_uvs"].numpy().astype(np.float64)
    tri = faces[prim[got]]
    w1, w2 = bu[got, 0:1], bu[got, 1:2]
    p = vertices[tri[:, 0]] * (1 - w1 - w2) + vertices[tri[:, 1]] * w1 + vertices[tri[:, 2]] * w2
    src = panorama.to_uint8()
    x, y = direction_to_pixel(p, src.shape[1], src.shape[0])
    col = sample_equirect(src.astype(np.float32), x, y)
    tex = np.zeros((size * size, 3), np.float32)
    tex[got] = col
    tex = tex.reshape(size, size, 3)
    filled = got.reshape(size, size)
    tex = dilate_islands(tex, filled, padding)
    return np.clip(np.rint(tex), 0, 255).astype(np.uint8)
