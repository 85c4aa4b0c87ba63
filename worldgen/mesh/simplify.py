"""Mesh clean-up helpers: triangle-budget simplification, unreferenced-vertex removal, normals, welding.

Two simplifiers, both quadric-error edge collapse in C++ (a numpy re-implementation with a
priority queue cannot be vectorised and would be orders of magnitude slower; Open3D's quadric
decimation did not finish on 1M triangles, ../shared/reference/recon-depth.md, section 5):

* ``"quadric"``: ``fast-simplification`` (1M -> 52k triangles in ~1.4 s). Vertices move to the
  quadric optimum; open borders are either locked outright or collapse without any boundary
  term, so a sheet with many silhouettes stalls far above its budget when they are locked.
* ``"meshopt"``: ``meshoptimizer``. Every kept vertex is one of the input vertices (a sheet's
  vertices stay on their pixel rays at their measured depth). With borders locked, interior
  vertices still collapse onto border vertices, so a sheet with many silhouettes does not stall:
  a 1.19M-triangle forest sheet -> 300k in 2.5 s on 2 busy cores, where ``"quadric"`` with
  locked borders stalled at 486k on the full grid. Without the lock, border vertices collapse
  only along their own border (meshoptimizer's border classification).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, MissingDependencyError


def compact(vertices: np.ndarray, faces: np.ndarray, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop vertices no face uses and renumber the faces.

    Args:
        vertices: positions. [V, 3]
        faces: vertex indices. [F, 3] int
        extra: per-vertex arrays to filter alongside ``vertices``. [V, ...] each

    Returns:
        (vertices [V', 3], faces [F, 3] int32, *extra [V', ...]) with V' = vertices in use.
    """
    used = np.zeros(len(vertices), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    out_faces = remap[faces].astype(np.int32) if faces.size else np.zeros((0, 3), np.int32)
    return (vertices[used], out_faces, *(e[used] for e in extra))


def simplify(
    vertices: np.ndarray,
    faces: np.ndarray,
    max_triangles: int,
    *,
    preserve_border: bool = True,
    aggressiveness: float = 7.0,
    method: str = "quadric",
    attributes: np.ndarray | None = None,
    lock: np.ndarray | None = None,
    carry: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, ...]:
    """Quadric-error simplification down to at most ``max_triangles`` triangles.

    Args:
        vertices: positions, metres. [V, 3] float
        faces: triangles. [F, 3] int
        max_triangles: triangle budget; a mesh already within it is returned unchanged.
        preserve_border: never collapse an edge that touches an open border. Borders of a sheet
            are its silhouettes (depth cuts, sky boundary), the ±180° seam and the pole caps, so
            this keeps them exactly on their pixel rays.
        aggressiveness: fast-simplification's ``agg`` (higher = faster, rougher; "quadric" only).
        method: "quadric" (fast-simplification) or "meshopt" (meshoptimizer; without
            ``preserve_border`` borders still keep their shape, see the module docstring).
        attributes: per-vertex values whose linear interpolation the simplification should keep
            ("meshopt" only), e.g. texture coordinates scaled by their weight. [V, K] float
        lock: vertices that must stay ("meshopt" only; edges may still collapse onto them). [V] bool
        carry: per-vertex arrays returned for the kept vertices ("meshopt" only: it keeps input
            vertices). [V, ...] each

    Returns:
        (vertices [V', 3] float64, faces [F', 3] int32, *carry [V', ...]), F' <= max(F, max_triangles).
    """
    if len(faces) <= max_triangles:
        return (np.asarray(vertices, np.float64), np.asarray(faces, np.int32), *carry)
    if method == "meshopt":
        return _simplify_meshopt(vertices, faces, max_triangles, preserve_border, attributes, lock, carry)
    if method != "quadric":
        raise InputError(f"unknown simplifier {method!r}; use 'meshopt' or 'quadric'")
    if carry:
        raise InputError("simplify: carry needs method='meshopt' (the quadric simplifier moves vertices)")
    try:
        import fast_simplification
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("fast-simplification", "mesh", "mesh simplification") from exc
    v, f = fast_simplification.simplify(
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int32),
        target_count=int(max_triangles),
        agg=float(aggressiveness),
        preserve_border=preserve_border,
    )
    f = np.asarray(f, np.int32).reshape(-1, 3)
    # The simplifier may leave zero-area slivers and orphaned vertices behind.
    tri = v[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    f = f[area2 > 0]
    v, f = compact(v, f)
    return v, f


def _simplify_meshopt(
    vertices: np.ndarray,
    faces: np.ndarray,
    max_triangles: int,
    lock_border: bool,
    attributes: np.ndarray | None,
    lock: np.ndarray | None,
    carry: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, ...]:
    try:
        import meshoptimizer
    except ImportError as exc:
        raise MissingDependencyError("meshoptimizer", "mesh", "sheet mesh simplification") from exc
    v = np.ascontiguousarray(vertices, dtype=np.float32)
    idx = np.ascontiguousarray(np.asarray(faces).reshape(-1), dtype=np.uint32)
    dst = np.zeros_like(idx)
    # target_error 1 (relative to the mesh extent) = no error bound: the triangle budget decides.
    opts = meshoptimizer.SIMPLIFY_LOCK_BORDER if lock_border else 0
    a = None
    if attributes is not None or lock is not None:
        a = np.ascontiguousarray(np.zeros((len(v), 1)) if attributes is None else attributes, dtype=np.float32)
    faces = np.asarray(faces).reshape(-1, 3)
    # Two halves (x < 0 and x >= 0 by face centroid) simplified in two threads: the C call
    # releases the GIL, and with borders locked both halves keep their shared cut line exactly,
    # so they join without a crack. Each half gets the budget in proportion to its faces.
    parts = [np.arange(len(faces))]
    if lock_border and len(faces) > 200_000:
        left = v[faces].mean(1)[:, 0] < 0
        parts = [np.nonzero(left)[0], np.nonzero(~left)[0]]

    def run(sel: np.ndarray) -> np.ndarray:
        idx = np.ascontiguousarray(faces[sel].reshape(-1), dtype=np.uint32)
        dst = np.zeros_like(idx)
        target = 3 * int(max_triangles * len(sel) / len(faces))
        # target_error 1 (relative to the mesh extent) = no error bound: the budget decides.
        if a is None:
            n = meshoptimizer.simplify(dst, idx, v, target_index_count=target, target_error=1.0, options=opts)
        else:
            n = _with_attributes(meshoptimizer, dst, idx, v, a, target, opts, lock)
        return dst[:n]

    if len(parts) == 1:
        dst = run(parts[0])
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            dst = np.concatenate(list(pool.map(run, parts)))
    n = len(dst)
    f = dst[:n].reshape(-1, 3).astype(np.int64)
    v64 = np.asarray(vertices, np.float64)
    tri = v64[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return compact(v64, f[area2 > 0], *carry)


# meshoptimizer compares squared errors in float32: 1e10 squared still fits.
ATTRIBUTE_ERROR_LIMIT = 1e10


def _with_attributes(
    meshoptimizer,
    dst: np.ndarray,
    idx: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    target_indices: int,
    options: int,
    lock: np.ndarray | None,
) -> int:
    """meshopt_simplifyWithAttributes through a typed prototype (the binding declares no
    argument types for it, so its float argument cannot be passed through its wrapper)."""
    import ctypes

    from meshoptimizer._loader import lib

    P = ctypes.POINTER
    proto = ctypes.CFUNCTYPE(
        ctypes.c_size_t,
        P(ctypes.c_uint),
        P(ctypes.c_uint),
        ctypes.c_size_t,
        P(ctypes.c_float),
        ctypes.c_size_t,
        ctypes.c_size_t,
        P(ctypes.c_float),
        ctypes.c_size_t,
        P(ctypes.c_float),
        ctypes.c_size_t,
        P(ctypes.c_ubyte),
        ctypes.c_size_t,
        ctypes.c_float,
        ctypes.c_uint,
        P(ctypes.c_float),
    )
    fn = proto(("meshopt_simplifyWithAttributes", lib))
    weights = np.ones(a.shape[1], np.float32)
    lk = None if lock is None else np.ascontiguousarray(lock, dtype=np.uint8)
    return int(
        fn(
            dst.ctypes.data_as(P(ctypes.c_uint)),
            idx.ctypes.data_as(P(ctypes.c_uint)),
            idx.size,
            v.ctypes.data_as(P(ctypes.c_float)),
            len(v),
            12,
            a.ctypes.data_as(P(ctypes.c_float)),
            4 * a.shape[1],
            weights.ctypes.data_as(P(ctypes.c_float)),
            a.shape[1],
            None if lk is None else lk.ctypes.data_as(P(ctypes.c_ubyte)),
            target_indices,
            # No error bound: the budget decides. With attributes the error is not bounded by the
            # mesh extent (texture colour and coordinates, weighted), and a bound of 1 stopped a
            # textured room short of its budget (the sheet then fell back to a coarser grid).
            ATTRIBUTE_ERROR_LIMIT,
            options,
            None,
        )
    )


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (right-hand rule on CCW faces).

    Args:
        vertices: [V, 3] float. faces: [F, 3] int.

    Returns:
        [V, 3] float32; a vertex no face uses gets (0, 1, 0).
    """
    v = np.asarray(vertices, np.float64)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 x area: area weighting
    acc = np.zeros((len(v), 3))
    for k in range(3):  # 3 fixed passes, each a vectorised bincount
        for c in range(3):
            acc[:, c] += np.bincount(faces[:, k], weights=fn[:, c], minlength=len(v))
    ln = np.linalg.norm(acc, axis=1, keepdims=True)
    out = np.where(ln > 0, acc / np.maximum(ln, 1e-300), np.array([0.0, 1.0, 0.0]))
    return out.astype(np.float32)


def weld(vertices: np.ndarray, faces: np.ndarray, tolerance: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tolerance`` metres (on a grid) and drop faces that collapse.

    Returns:
        (vertices [V', 3] float64, faces [F', 3] int32).
    """
    v = np.asarray(vertices, np.float64)
    key = np.round(v / tolerance).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    f = inverse.reshape(-1)[faces]
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    return compact(v[first], f[ok])
