"""SceneSpec -> a 3D scene: terrain heightfield, water, sky and lights, objects built from primitives.

The scene is plain data that :mod:`worldgen.procedural.render` ray-casts from any viewpoint and
:func:`scene_to_mesh` exports as ground-truth triangles. Everything is in the world frame of
docs/conventions.md (+Y up, -Z forward, metres); the capture camera sits at the origin and the
ground under it at y = -eye_height.

Terrain is a triangulated heightfield: each grid cell is split along its (0,0)-(1,1) diagonal into
two planar triangles, so the rendered surface and the exported mesh are the same surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..types import SEMANTIC_CLASSES, Mesh, MeshScene, srgb_to_linear
from .spec import SceneSpec

# Primitive types.
ELLIPSOID, CYLINDER, CONE, POLYTOPE = 0, 1, 2, 3
MAX_PLANES = 6

# Surface patterns (procedural textures applied when shading).
(
    P_PLAIN,
    P_FOLIAGE,
    P_BARK,
    P_FACADE,
    P_PLANKS,
    P_ROOF,
    P_BOOKS,
    P_FIRE,
    P_GLOW,
    P_RUG,
    P_ROCK,
    P_FABRIC,
    P_STONEWALL,
) = range(13)


def _sem(name: str) -> int:
    return SEMANTIC_CLASSES.index(name)


@dataclass(frozen=True)
class Material:
    """One surface material.

    Args:
        albedo: base colour, linear RGB in [0, 1]. [3]
        semantic: class id in SEMANTIC_CLASSES.
        pattern: one of the P_* procedural textures.
        emissive: emitted radiance, linear RGB (0 for lit surfaces). [3]
        shine: specular strength in [0, 1].
    """

    albedo: tuple[float, float, float]
    semantic: int
    pattern: int = P_PLAIN
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shine: float = 0.0


def _srgb(r: float, g: float, b: float) -> tuple[float, float, float]:
    lin = srgb_to_linear(np.array([r, g, b], np.float32) / 255.0)
    return (float(lin[0]), float(lin[1]), float(lin[2]))


@dataclass
class Heightfield:
    """A square triangulated heightfield.

    Args:
        heights: vertex heights, metres; ``heights[i, j]`` is at x = -half + i * cell,
            z = -half + j * cell. [N + 1, N + 1] float64, N a power of two.
        half: half the side of the square, metres.
        cell: grid spacing, metres.
    """

    heights: np.ndarray
    half: float
    cell: float
    maxmip: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        h = self.heights
        m = np.maximum(np.maximum(h[:-1, :-1], h[1:, :-1]), np.maximum(h[:-1, 1:], h[1:, 1:]))
        mips = [m]
        while mips[-1].shape[0] > 1:
            a = mips[-1]
            mips.append(np.maximum(np.maximum(a[0::2, 0::2], a[1::2, 0::2]), np.maximum(a[0::2, 1::2], a[1::2, 1::2])))
        self.maxmip = mips

    @property
    def n(self) -> int:
        return int(self.heights.shape[0] - 1)

    def height(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Surface height at world (x, z), metres (clamped to the square). [...] float64"""
        n = self.n
        u = np.clip((np.asarray(x, np.float64) + self.half) / self.cell, 0, n - 1e-9)
        v = np.clip((np.asarray(z, np.float64) + self.half) / self.cell, 0, n - 1e-9)
        i = u.astype(np.int64)
        j = v.astype(np.int64)
        a, b = u - i, v - j
        # Flat takes: much faster than 2-D fancy indexing on large batches.
        flat = self.heights.ravel()
        base = i * (n + 1) + j
        h00, h10 = flat.take(base), flat.take(base + (n + 1))
        h01, h11 = flat.take(base + 1), flat.take(base + (n + 2))
        lower = a + b <= 1
        return np.where(
            lower, h00 + a * (h10 - h00) + b * (h01 - h00), h11 + (1 - a) * (h01 - h11) + (1 - b) * (h10 - h11)
        )

    def normal(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Smooth shading normal (bilinear blend of central-difference vertex normals). [..., 3] float32"""
        n = self.n
        u = np.clip((np.asarray(x, np.float64) + self.half) / self.cell, 0, n - 1e-9)
        v = np.clip((np.asarray(z, np.float64) + self.half) / self.cell, 0, n - 1e-9)
        i = u.astype(np.int64)
        j = v.astype(np.int64)
        a, b = (u - i).astype(np.float32)[..., None], (v - j).astype(np.float32)[..., None]
        vn = self._vertex_normals.reshape(-1, 3)
        base = i * (n + 1) + j
        n00, n10 = vn.take(base, axis=0), vn.take(base + (n + 1), axis=0)
        n01, n11 = vn.take(base + 1, axis=0), vn.take(base + (n + 2), axis=0)
        out = (n00 * (1 - a) + n10 * a) * (1 - b) + (n01 * (1 - a) + n11 * a) * b
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    @property
    def _vertex_normals(self) -> np.ndarray:
        vn = getattr(self, "_vn", None)
        if vn is None:
            h = self.heights
            gx = np.gradient(h, self.cell, axis=0)
            gz = np.gradient(h, self.cell, axis=1)
            vn = np.stack([-gx, np.ones_like(h), -gz], axis=-1).astype(np.float32)
            vn /= np.linalg.norm(vn, axis=-1, keepdims=True)
            self._vn = vn
        return vn


@dataclass
class Primitives:
    """All objects' primitives in flat arrays (P primitives).

    Args:
        kind: ELLIPSOID, CYLINDER, CONE or POLYTOPE. [P] int8
        center: ellipsoid centre, or base centre of a cylinder/cone (world, metres). [P, 3] float64
        size: ellipsoid radii (x, y, z); cylinder/cone (radius, height, 0); polytope unused. [P, 3] float64
        planes: polytope half-spaces n . x <= d as (nx, ny, nz, d), padded with (0, 0, 0, 1). [P, 6, 4] float64
        material: index into Scene.materials. [P] int32
        bound_center: bounding sphere centre, metres. [P, 3] float64
        bound_radius: bounding sphere radius, metres. [P] float64
        corners: polytope vertices for mesh export (list of [k, 3] arrays, None for other kinds).
        box_lo, box_hi: axis-aligned bounds, metres (tighter than the sphere for culling). [P, 3] float64
    """

    kind: np.ndarray
    center: np.ndarray
    size: np.ndarray
    planes: np.ndarray
    material: np.ndarray
    bound_center: np.ndarray
    bound_radius: np.ndarray
    corners: list
    box_lo: np.ndarray = None
    box_hi: np.ndarray = None

    def __post_init__(self) -> None:
        n = len(self.kind)
        lo = np.zeros((n, 3))
        hi = np.zeros((n, 3))
        c, sz = self.center, self.size
        for k in (ELLIPSOID, CYLINDER, CONE):
            m = self.kind == k
            if k == ELLIPSOID:
                lo[m], hi[m] = c[m] - sz[m], c[m] + sz[m]
            else:
                r, h = sz[m, 0], sz[m, 1]
                lo[m] = c[m] - np.stack([r, np.zeros_like(r), r], 1)
                hi[m] = c[m] + np.stack([r, h, r], 1)
        for i in np.nonzero(self.kind == POLYTOPE)[0]:
            pts = np.asarray(self.corners[i])
            lo[i], hi[i] = pts.min(0), pts.max(0)
        self.box_lo, self.box_hi = lo - 1e-6, hi + 1e-6

    def __len__(self) -> int:
        return int(self.kind.shape[0])


@dataclass
class Lighting:
    """Sun, sky and fog.

    Args:
        sun_dir: unit vector towards the sun (or the moon at night). [3]
        sun_color: direct light radiance, linear RGB (0 when the sun is below the horizon). [3]
        zenith, horizon: sky colours straight up and at the horizon, linear RGB. [3]
        ground_bounce: light reflected from the ground, linear RGB. [3]
        glow: colour of the halo around the sun, linear RGB. [3]
        fog_color: colour distant surfaces fade to, linear RGB. [3]
        haze: distance haze density, 1/metres.
        fog: ground fog density near the ground, 1/metres.
        fog_height: e-folding height of the ground fog above the camera's ground, metres.
        clouds: cloud cover in [0, 1].
        night: True at night (stars, lit windows).
        exposure: multiplier before tone mapping.
        lights: point lights (position [3], colour [3], range metres) as a [L, 7] float64 array.
    """

    sun_dir: np.ndarray
    sun_color: np.ndarray
    zenith: np.ndarray
    horizon: np.ndarray
    ground_bounce: np.ndarray
    glow: np.ndarray
    fog_color: np.ndarray
    haze: float
    fog: float
    fog_height: float
    clouds: float
    night: bool
    exposure: float
    lights: np.ndarray


@dataclass
class Room:
    """An interior: the inside of an axis-aligned box with windows and a door on its walls.

    Args:
        lo, hi: box corners, metres. [3]
        openings: (wall, u0, u1, y0, y1, kind) rows; wall 0..3 = -Z, +X, +Z, -X; kind 0 window,
            1 door; u is the horizontal coordinate along the wall. [K, 6] float64
    """

    lo: np.ndarray
    hi: np.ndarray
    openings: np.ndarray


@dataclass
class Scene:
    """A renderable procedural world. Build it with :func:`build_scene`."""

    spec: SceneSpec
    eye_height: float
    terrain: Heightfield | None
    water_level: float | None
    room: Room | None
    prims: Primitives
    materials: list[Material]
    light: Lighting
    ground_style: str
    noise: np.ndarray
    report: dict = field(default_factory=dict)

    @property
    def mat_albedo(self) -> np.ndarray:
        return np.array([m.albedo for m in self.materials], np.float32)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def _fractal(n: int, beta: float, rng: np.random.Generator, lowcut: float = 1.0) -> np.ndarray:
    """Periodic fractal noise by spectral synthesis: amplitude ~ 1/f^(beta/2). [n, n] float64, std 1."""
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n) * n
    fr = np.hypot(f[:, None], f[None, :])
    fr[0, 0] = 1.0
    amp = 1.0 / np.maximum(fr, lowcut) ** (beta / 2)
    amp[0, 0] = 0.0
    out = np.fft.ifft2(np.fft.fft2(white) * amp).real
    return out / (out.std() + 1e-12)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# --------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------

_GRID = 1024
_HALF = 3072.0


class _Builder:
    def __init__(self, spec: SceneSpec, eye_height: float):
        self.spec = spec
        self.eye = eye_height
        self.rng = np.random.default_rng([spec.seed, 0x5EED])
        self.materials: list[Material] = []
        self.mat_index: dict[str, int] = {}
        self.kind: list[int] = []
        self.center: list = []
        self.size: list = []
        self.planes: list = []
        self.material: list[int] = []
        self.bc: list = []
        self.br: list = []
        self.corners: list = []
        self.lights: list = []

    # materials ---------------------------------------------------------------------------
    def mat(
        self,
        name: str,
        rgb: tuple,
        sem: str,
        pattern: int = P_PLAIN,
        emissive: tuple = (0.0, 0.0, 0.0),
        shine: float = 0.0,
    ) -> int:
        if name not in self.mat_index:
            self.mat_index[name] = len(self.materials)
            self.materials.append(Material(_srgb(*rgb), _sem(sem), pattern, emissive, shine))
        return self.mat_index[name]

    # primitives --------------------------------------------------------------------------
    def ellipsoid(self, c, radii, m: int) -> None:
        c = np.asarray(c, np.float64)
        r = np.asarray(radii, np.float64)
        self._add(ELLIPSOID, c, r, None, m, c, float(r.max()), None)

    def cylinder(self, base, radius: float, height: float, m: int) -> None:
        b = np.asarray(base, np.float64)
        bc = b + [0, height / 2, 0]
        self._add(CYLINDER, b, np.array([radius, height, 0.0]), None, m, bc, math.hypot(radius, height / 2), None)

    def cone(self, base, radius: float, height: float, m: int) -> None:
        b = np.asarray(base, np.float64)
        # The smallest sphere through the base circle and apex, or around the base when flat.
        yc = max(0.0, (height * height - radius * radius) / (2 * height))
        bc = b + [0, yc, 0]
        self._add(CONE, b, np.array([radius, height, 0.0]), None, m, bc, max(math.hypot(radius, yc), height - yc), None)

    def box(self, center, half, m: int, yaw: float = 0.0) -> None:
        """An upright box: centre, half extents (x, y, z), turned by ``yaw`` radians about +Y."""
        c = np.asarray(center, np.float64)
        hx, hy, hz = half
        corners = np.array([[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        self.polytope(c + corners @ _yaw(yaw).T, m)

    def prism(self, center, half, roof: float, m: int, yaw: float = 0.0) -> None:
        """A gable roof: triangular prism over a (2 hx) x (2 hz) base at centre's height, ridge along x."""
        c = np.asarray(center, np.float64)
        hx, hz = half
        local = np.array([[-hx, 0, -hz], [hx, 0, -hz], [-hx, 0, hz], [hx, 0, hz], [-hx, roof, 0], [hx, roof, 0]])
        self.polytope(c + local @ _yaw(yaw).T, m)

    def polytope(self, pts: np.ndarray, m: int) -> None:
        from scipy.spatial import ConvexHull

        hull = ConvexHull(pts)
        eq = np.unique(np.round(hull.equations, 9), axis=0)  # (n, -d): n . x + off <= 0
        planes = np.zeros((MAX_PLANES, 4))
        planes[:, 3] = 1.0
        if len(eq) > MAX_PLANES:
            raise InputError("internal: polytope has too many faces")
        planes[: len(eq), :3] = eq[:, :3]
        planes[: len(eq), 3] = -eq[:, 3]
        c = pts.mean(0)
        self._add(POLYTOPE, c, np.zeros(3), planes, m, c, float(np.linalg.norm(pts - c, axis=1).max()), pts)

    def _add(self, kind, c, size, planes, m, bc, br, corners) -> None:
        self.kind.append(kind)
        self.center.append(c)
        self.size.append(size)
        if planes is None:
            planes = np.zeros((MAX_PLANES, 4))
            planes[:, 3] = 1.0
        self.planes.append(planes)
        self.material.append(m)
        self.bc.append(bc)
        self.br.append(br * 1.001 + 1e-3)
        self.corners.append(corners)

    def primitives(self) -> Primitives:
        n = len(self.kind)
        return Primitives(
            kind=np.array(self.kind, np.int8).reshape(n),
            center=np.array(self.center, np.float64).reshape(n, 3),
            size=np.array(self.size, np.float64).reshape(n, 3),
            planes=np.array(self.planes, np.float64).reshape(n, MAX_PLANES, 4),
            material=np.array(self.material, np.int32).reshape(n),
            bound_center=np.array(self.bc, np.float64).reshape(n, 3),
            bound_radius=np.array(self.br, np.float64).reshape(n),
            corners=self.corners,
        )


def _yaw(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def build_scene(spec: SceneSpec, eye_height: float = 1.6) -> Scene:
    """Build the 3D world a spec describes.

    Args:
        spec: the scene description (its seed drives every random choice).
        eye_height: capture camera height above the ground, metres (> 0).

    Returns:
        A :class:`Scene`; the camera at the origin stands ``eye_height`` above the ground.
    """
    if not isinstance(spec, SceneSpec):
        raise InputError("build_scene needs a SceneSpec; parse a prompt with parse_prompt first")
    if not (0.2 <= float(eye_height) <= 50.0):
        raise InputError(f"eye height {eye_height} m must lie in [0.2, 50] m")
    b = _Builder(spec, float(eye_height))
    noise_rng = np.random.default_rng([spec.seed, 0x7E27])
    tex = np.stack([_fractal(256, 2.0, noise_rng), _fractal(256, 3.2, noise_rng)], axis=-1).astype(np.float32)
    terrain = water = room = None
    style = spec.setting
    if spec.setting == "interior":
        room = _build_room(b)
    else:
        terrain, water = _build_terrain(b)
        _place_objects(b, terrain, water)
    light = _lighting(spec, b)
    scene = Scene(
        spec=spec,
        eye_height=float(eye_height),
        terrain=terrain,
        water_level=water,
        room=room,
        prims=b.primitives(),
        materials=b.materials,
        light=light,
        ground_style=style,
        noise=tex,
    )
    scene.report = {
        "primitives": len(scene.prims),
        "point_lights": int(light.lights.shape[0]),
        "water_level": water,
        "terrain_cells": terrain.n if terrain is not None else 0,
    }
    return scene


# --------------------------------------------------------------------------------------------
# Terrain
# --------------------------------------------------------------------------------------------


def _build_terrain(b: _Builder) -> tuple[Heightfield, float | None]:
    s = b.spec
    rng = np.random.default_rng([s.seed, 0x7E22A1])
    n = _GRID
    cell = 2 * _HALF / n
    ax = -_HALF + cell * np.arange(n + 1)
    x, z = np.meshgrid(ax, ax, indexing="ij")
    r = np.hypot(x, z)

    def field(beta: float) -> np.ndarray:
        f = _fractal(n, beta, rng)
        return np.pad(f, ((0, 1), (0, 1)), mode="wrap")

    rough = s.roughness
    beta = 4.0 - 0.8 * rough
    base = field(beta)
    detail = field(2.2)
    relief = s.relief
    setting = s.setting
    water = None
    ring = _smoothstep(1400.0, 2900.0, r)  # distant hills closing the horizon
    if setting == "mountains":
        from scipy.ndimage import gaussian_filter

        # Broad massifs from very smooth noise, carved by blurred ridged noise: peaks read as
        # mountains a few hundred metres to a few km away rather than a fence of needles.
        big = gaussian_filter(field(4.4), 6.0, mode="wrap")
        big = np.clip((big - np.quantile(big, 0.25)) / (big.max() - np.quantile(big, 0.25)), 0, None)
        ridge = gaussian_filter(np.clip(1.0 - np.abs(field(3.3)), 0, None), 3.0, mode="wrap")
        ridge = (ridge - ridge.min()) / (ridge.max() - ridge.min())
        peaks = big**1.2 * (0.55 + 0.45 * ridge) + 0.08 * ridge
        valley = _smoothstep(40.0, 320.0, r + 50 * detail)
        h = relief * 2.6 * peaks * valley + 2.0 * detail
        h += 0.45 * relief * ring
    elif setting == "canyon":
        # A gorge along Z with terraced walls, and terraced mesas beyond.
        wob = 40.0 * field(3.5)
        wob = wob - wob[n // 2, n // 2]
        wall = np.abs(x + wob)
        mesa = 0.8 + 0.2 * np.tanh(base)
        level = (
            _smoothstep(45.0, 60.0, wall) * 0.45
            + _smoothstep(110.0, 125.0, wall + 20 * detail) * 0.35
            + _smoothstep(260.0, 280.0, wall + 60 * base) * 0.2
        )
        h = relief * level * mesa * 1.6 + 0.6 * detail
        h = np.maximum(h, relief * 0.3 * ring * 3)
    elif setting == "desert":
        dune = np.clip(1.0 - np.abs(np.sin(0.012 * (x + 0.6 * z) + 1.2 * base)), 0, None)
        h = relief * (0.7 * dune**1.5 + 0.3 * base) * _smoothstep(40.0, 600.0, r) + 0.3 * detail
        h += 2.0 * relief * ring * (0.6 + 0.4 * base)
    elif setting == "city":
        h = np.zeros_like(x) + 0.02 * detail
    else:
        hills = relief * (0.6 * base + 0.4 * detail * 0.3) * _smoothstep(25.0, 500.0, r)
        h = hills + 0.25 * detail + relief * 2.5 * ring * (0.7 + 0.3 * base)
        if setting in ("meadow", "village"):
            h = h * 0.8
    # Put the ground under the camera at y = -eye_height and flatten a small pad around it.
    c = n // 2
    pad = _smoothstep(3.0, 12.0, r)
    h = h - h[c, c]
    h = h * pad - b.eye
    if setting == "city":
        h = np.where(np.abs(x) < 9.0, -b.eye, h)
    if s.water == "lake" or setting == "lake":
        # An irregular basin ahead; the shore passes 12-25 m in front of the camera.
        ang = np.arctan2(x, -z)
        wob = 1.0 + 0.25 * field(3.0) + 0.15 * np.cos(3 * ang + rng.uniform(0, 6))
        cz = -(7.0 + rng.uniform(0, 4) + 330.0)
        d = np.hypot(x / 1.25, z - cz) / (330.0 * wob)
        basin = _smoothstep(1.0, 0.97, d)
        water = -b.eye - 0.45
        # Land outside the basin stays above the water so the lake has one shore.
        h = np.where(basin > 0, h * (1 - basin) + (water - 3.0) * basin, np.maximum(h, -b.eye - 0.1))
        h[c, c] = -b.eye
    elif s.water == "sea" or setting == "coast":
        # A beach: the waterline wanders 5-11 m ahead, the sand rises gently inland (the camera
        # stands on it ~1 m above the sea, so the sea fills the view ahead down to ~15 degrees
        # below the horizon instead of a one-pixel band), hills start behind the beach and the
        # sea bed shelves away offshore.
        wav = field(3.2)
        # The shore bends back on both sides, so the camera stands on a point with sea over
        # about half the horizon.
        coast = z + 8.0 + 3.0 * (wav - wav[c, c]) - x * x / 300.0  # > 0 on land, < 0 offshore, metres
        water = -b.eye - 0.9
        inland = np.clip(coast, 0, None)
        drop = np.clip(-coast, 0, None)
        rel = h + b.eye
        land = (
            water
            + 0.12
            + 0.9 * (1 - np.exp(-inland / 9.0))
            + 0.015 * inland
            + np.clip(rel, 0, None) * _smoothstep(25.0, 160.0, inland)
        )
        bed = (
            water
            + 0.12
            - 0.09 * drop
            - 6.0 * (1 - np.exp(-drop / 60.0))
            - 0.3 * np.abs(detail) * _smoothstep(0, 30, drop)
        )
        h = np.where(coast < 0, bed, land)
        h = h - h[c, c] - b.eye
        pad2 = _smoothstep(2.0, 6.0, r)
        h = h * pad2 + (-b.eye) * (1 - pad2)
        h[c, c] = -b.eye
    return Heightfield(np.ascontiguousarray(h, np.float64), _HALF, cell), water


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------


def _scatter(
    rng: np.random.Generator, spacing: float, radius: float, clear: float, clump: np.ndarray | None = None
) -> np.ndarray:
    """Jittered-grid points in a disc (one per spacing^2 m^2), outside ``clear`` metres. [K, 2] float64"""
    k = int(math.ceil(radius / spacing))
    g = (np.arange(-k, k) + 0.5) * spacing
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    pts = pts + rng.uniform(-0.45, 0.45, pts.shape) * spacing
    rr = np.hypot(pts[:, 0], pts[:, 1])
    keep = (rr < radius) & (rr > clear)
    return pts[keep]


def _place_objects(b: _Builder, hf: Heightfield, water: float | None) -> None:
    s = b.spec
    rng = np.random.default_rng([s.seed, 0x0B1EC7])
    amt = s.objects
    autumn = s.season == "autumn"
    night = s.time_of_day in ("night", "dusk")
    leaf = (196, 110, 40) if autumn else (70, 110, 42)
    m_bark = b.mat("bark", (78, 58, 42), "tree", P_BARK)
    m_pine = b.mat("pine", (38, 68, 40), "tree", P_FOLIAGE)
    m_leaf = b.mat("leaf", leaf, "tree", P_FOLIAGE)
    m_leaf2 = b.mat("leaf2", (214, 160, 50) if autumn else (88, 128, 50), "tree", P_FOLIAGE)
    m_palm = b.mat("palm", (72, 118, 46), "tree", P_FOLIAGE)
    m_cactus = b.mat("cactus", (70, 112, 60), "vegetation", P_FOLIAGE)
    m_bush = b.mat("bush", (150, 90, 50) if autumn else (60, 96, 42), "vegetation", P_FOLIAGE)
    rock_rgb = {"desert": (176, 120, 82), "canyon": (168, 96, 64)}.get(s.setting, (118, 114, 108))
    m_rock = b.mat("rock", rock_rgb, "rock", P_ROCK)

    def ground(p: np.ndarray) -> np.ndarray:
        return hf.height(p[:, 0], p[:, 1])

    def slope(p: np.ndarray) -> np.ndarray:
        return hf.normal(p[:, 0], p[:, 1])[:, 1]

    def usable(p: np.ndarray, max_slope_ny: float = 0.8) -> np.ndarray:
        y = ground(p)
        ok = slope(p) > max_slope_ny
        if water is not None:
            ok &= y > water + 0.3
        return ok

    clump_rng = np.random.default_rng([s.seed, 0xC1])
    clump_tex = _fractal(128, 3.0, clump_rng)

    def clumped(p: np.ndarray, frac: float) -> np.ndarray:
        i = (np.floor(p[:, 0] / 12.0).astype(int)) % 128
        j = (np.floor(p[:, 1] / 12.0).astype(int)) % 128
        return clump_tex[i, j] > np.quantile(clump_tex, 1 - frac)

    radius = 220.0
    if s.setting == "city":
        _city(b, rng, amt, night)
    if s.setting == "village" or amt.get("house", 0) > 0 and s.setting not in ("city",):
        _village(b, hf, rng, amt, night, usable)
    # Trees.
    tree_line = -b.eye + (0.45 * s.relief if s.setting == "mountains" else 1e9)
    for kind, spacing in (("pine", 8.0), ("broadleaf", 16.0), ("palm", 22.0)):
        a = amt.get(kind, 0.0)
        if a <= 0:
            continue
        sp = spacing / math.sqrt(a)
        frac = 0.75 if s.setting in ("forest", "lake") else 0.45
        pts = _scatter(rng, sp, radius if s.setting != "city" else 120.0, 6.0)
        if s.setting == "city":
            pts = pts[(np.abs(np.abs(pts[:, 0]) - 7.5) < 0.8) & (np.abs(pts[:, 1]) > 6)]
        else:
            pts = pts[clumped(pts, frac) & usable(pts, 0.75) & _clear_of_buildings(b, pts)]
            if water is not None and s.water == "lake":
                # Leave the view across the lake open: no trees in the wedge towards it.
                pts = pts[~((pts[:, 1] < 0) & (np.abs(pts[:, 0]) < 12.0 + 0.45 * np.abs(pts[:, 1])))]
            pts = pts[ground(pts) < tree_line]
        y = ground(pts) - 0.3
        for (px, pz), py in zip(pts, y):
            d = math.hypot(px, pz)
            if kind == "pine":
                height = float(rng.uniform(8.0, 25.0))
                rad = height * float(rng.uniform(0.18, 0.26))
                b.cylinder((px, py, pz), 0.06 * rad + 0.12, height * 0.3, m_bark)
                layers = 3 if d < 80 else 1
                for k in range(layers):
                    f = k / max(layers, 1)
                    base_y = py + height * (0.2 + 0.45 * f)
                    b.cone(
                        (px, base_y, pz),
                        rad * (1 - 0.35 * f),
                        height * (0.8 - 0.45 * f) if layers > 1 else height * 0.8,
                        m_pine,
                    )
            elif kind == "broadleaf":
                height = float(rng.uniform(7.0, 16.0))
                crown = height * float(rng.uniform(0.2, 0.28))
                b.cylinder((px, py, pz), 0.05 * height, height - crown, m_bark)
                mat = m_leaf if rng.uniform() < 0.6 else m_leaf2
                b.ellipsoid((px, py + height - crown * 0.9, pz), (crown, crown * 0.9, crown), mat)
                if d < 60:
                    for _ in range(2):
                        off = rng.uniform(-0.5, 0.5, 3) * crown
                        b.ellipsoid(
                            (px + off[0], py + height - crown * 0.8 + off[1] * 0.5, pz + off[2]),
                            (crown * 0.7, crown * 0.6, crown * 0.7),
                            mat,
                        )
            else:
                height = float(rng.uniform(7.0, 13.0))
                b.cylinder((px, py, pz), 0.18, height, m_bark)
                # A crown of four long drooping fronds around a small tuft.
                top = py + height
                b.ellipsoid((px, top + 0.2, pz), (0.7, 0.45, 0.7), m_palm)
                for fx, fz in ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)):
                    b.ellipsoid(
                        (px + 1.7 * fx, top - 0.35, pz + 1.7 * fz),
                        (1.9 if fx else 0.5, 0.22, 1.9 if fz else 0.5),
                        m_palm,
                    )
    if amt.get("cactus", 0) > 0:
        pts = _scatter(rng, 18.0 / math.sqrt(amt["cactus"]), radius, 5.0)
        pts = pts[usable(pts, 0.85)]
        for (px, pz), py in zip(pts, ground(pts)):
            hgt = float(rng.uniform(2.0, 5.0))
            b.cylinder((px, py - 0.2, pz), 0.25, hgt, m_cactus)
            b.ellipsoid((px, py - 0.2 + hgt, pz), (0.25, 0.25, 0.25), m_cactus)
            if rng.uniform() < 0.7:
                side = rng.uniform(0, 2 * math.pi)
                ox, oz = 0.6 * math.cos(side), 0.6 * math.sin(side)
                b.cylinder((px + ox, py - 0.2 + hgt * 0.4, pz + oz), 0.17, hgt * 0.35, m_cactus)
    if amt.get("bush", 0) > 0:
        pts = _scatter(rng, 16.0 / math.sqrt(amt["bush"]), 150.0, 4.0)
        pts = pts[usable(pts, 0.8) & _clear_of_buildings(b, pts)]
        if s.setting == "city":
            pts = pts[:0]
        for (px, pz), py in zip(pts, ground(pts)):
            rr = float(rng.uniform(0.5, 1.4))
            b.ellipsoid((px, py + rr * 0.3, pz), (rr * 1.2, rr * 0.8, rr), m_bush)
    if amt.get("rock", 0) > 0 and s.setting != "city":
        boulders = s.setting in ("desert", "canyon", "mountains") and amt["rock"] >= 1.0
        pts = _scatter(rng, 22.0 / math.sqrt(amt["rock"]), radius, 4.0)
        pts = pts[(rng.uniform(size=len(pts)) < 0.7) & _clear_of_buildings(b, pts)]
        if water is not None:
            pts = pts[ground(pts) > water - 1.0]
        for (px, pz), py in zip(pts, ground(pts)):
            rr = float(rng.lognormal(-0.2, 0.6))
            rr = min(rr, 4.0)
            if boulders and rng.uniform() < 0.3:
                # Open rocky ground: some boulders several metres across, half sunk, with a
                # smaller stone leaning on them.
                rr = float(rng.uniform(2.0, 5.0))
                b.ellipsoid(
                    (px, py + rr * 0.1, pz), (rr * rng.uniform(1.0, 1.6), rr * rng.uniform(0.6, 0.9), rr), m_rock
                )
                off = rng.uniform(-1, 1, 2) * rr
                b.ellipsoid((px + off[0], py, pz + off[1]), (rr * 0.5, rr * 0.45, rr * 0.55), m_rock)
                continue
            b.ellipsoid((px, py + rr * 0.15, pz), (rr * rng.uniform(0.9, 1.5), rr * rng.uniform(0.5, 0.8), rr), m_rock)
    if amt.get("tower", 0) > 0 and s.setting != "interior":
        m_st = b.mat("tower_stone", (150, 142, 130), "tower", P_STONEWALL)
        m_tr = b.mat("tower_roof", (90, 50, 40), "tower", P_ROOF)
        ang = rng.uniform(-0.6, 0.6)
        dist = float(rng.uniform(60.0, 110.0))
        px, pz = dist * math.sin(ang), -dist * math.cos(ang)
        py = float(hf.height(np.array(px), np.array(pz)))
        b.cylinder((px, py - 1, pz), 4.0, 24.0, m_st)
        b.cone((px, py + 23, pz), 5.0, 9.0, m_tr)


def _clear_of_buildings(b: _Builder, pts: np.ndarray) -> np.ndarray:
    """True for points outside every placed building footprint (with a 2 m margin). [K] bool"""
    if not b.kind or len(pts) == 0:
        return np.ones(len(pts), bool)
    bc = np.array(b.bc)
    br = np.array(b.br)
    big = np.array([k == POLYTOPE for k in b.kind]) & (br > 2.0)
    if not big.any():
        return np.ones(len(pts), bool)
    c, rad = bc[big][:, [0, 2]], br[big]
    ok = np.ones(len(pts), bool)
    for start in range(0, len(pts), 4096):
        d = np.linalg.norm(pts[start : start + 4096, None, :] - c[None], axis=-1)
        ok[start : start + 4096] = (d > rad[None] * 0.8 + 2.0).all(axis=1)
    return ok


def _city(b: _Builder, rng: np.random.Generator, amt: dict, night: bool) -> None:
    """Buildings lining a street along Z, sidewalks at 6-9 m, street lamps at the kerb."""
    n_b = amt.get("building", 0.0)
    palette = [(150, 140, 130), (120, 112, 110), (170, 150, 120), (110, 120, 130), (140, 100, 80), (90, 95, 105)]
    mats = [b.mat(f"facade{i}", c, "building", P_FACADE, shine=0.1) for i, c in enumerate(palette)]
    if n_b > 0:
        for side in (-1, 1):
            z = -300.0
            while z < 300.0:
                width = float(rng.uniform(12, 26))
                if abs(z + width / 2) < 1e-6:
                    z += 0.5
                height = float(rng.uniform(10, 30) + (rng.uniform(0, 60) if rng.uniform() < 0.25 * n_b else 0))
                depth = float(rng.uniform(14, 24))
                x0 = side * (9.0 + depth / 2)
                b.box(
                    (x0, -b.eye + height / 2 - 0.5, z + width / 2),
                    (depth / 2, height / 2 + 0.5, width / 2 - 0.3),
                    mats[int(rng.integers(len(mats)))],
                )
                z += width
        # A skyline beyond the street.
        for _ in range(int(60 * n_b)):
            ang = rng.uniform(0, 2 * math.pi)
            dist = rng.uniform(350, 900)
            hgt = rng.uniform(30, 150)
            w = rng.uniform(20, 45)
            b.box(
                (dist * math.sin(ang), -b.eye + hgt / 2, -dist * math.cos(ang)),
                (w / 2, hgt / 2, w / 2),
                mats[int(rng.integers(len(mats)))],
                yaw=float(rng.uniform(0, 1.5)),
            )
    n_l = amt.get("lamp", 0.0)
    if n_l > 0:
        _lamps(
            b,
            [(side * 6.3, z) for side in (-1, 1) for z in np.arange(-150.0 + 12.5 * (side > 0), 150.0, 25.0 / n_l)],
            night,
            -b.eye,
            height=6.0,
        )


def _lamps(b: _Builder, spots, night: bool, ground_y, height: float = 4.0) -> None:
    m_pole = b.mat("lamp_pole", (40, 42, 46), "lamp", shine=0.3)
    glow = (18.0, 12.0, 6.0) if night else (0.6, 0.55, 0.45)
    m_glow = b.mat("lamp_glow", (255, 240, 200), "lamp", P_GLOW, emissive=glow)
    for _i, (x, z) in enumerate(spots):
        if math.hypot(x, z) < 2.5:
            continue
        gy = ground_y(np.array([x]), np.array([z]))[0] if callable(ground_y) else ground_y
        b.cylinder((x, gy, z), 0.09, height, m_pole)
        b.ellipsoid((x, gy + height + 0.15, z), (0.28, 0.22, 0.28), m_glow)
        if night:
            b.lights.append([x, gy + height - 0.2, z, 1.0, 0.72, 0.4, 9.0])


def _village(b: _Builder, hf: Heightfield, rng: np.random.Generator, amt: dict, night: bool, usable) -> None:
    n = amt.get("house", 0.0)
    walls = [(225, 215, 190), (200, 180, 150), (235, 230, 220), (180, 150, 120)]
    m_walls = [b.mat(f"house_wall{i}", c, "house", P_FACADE) for i, c in enumerate(walls)]
    m_roof = [b.mat("roof_red", (150, 64, 46), "house", P_ROOF), b.mat("roof_dark", (80, 70, 68), "house", P_ROOF)]
    m_fence = b.mat("fence", (150, 120, 88), "fence", P_PLANKS)
    count = int(round(14 * n))
    placed = 0
    tries = 0
    spots = []
    while placed < count and tries < count * 20:
        tries += 1
        ang = rng.uniform(-math.pi, math.pi)
        dist = rng.uniform(16, 110)
        x, z = dist * math.sin(ang), -dist * math.cos(ang)
        if any(math.hypot(x - sx, z - sz) < 16 for sx, sz in spots):
            continue
        if not usable(np.array([[x, z]]), 0.9)[0]:
            continue
        spots.append((x, z))
        placed += 1
        w, d = rng.uniform(4, 6), rng.uniform(5, 9)
        hgt = rng.uniform(3.2, 5.5)
        yaw = float(ang + rng.uniform(-0.3, 0.3))
        y = float(hf.height(np.array(x), np.array(z))) - 0.4
        b.box((x, y + hgt / 2, z), (d, hgt / 2, w), m_walls[int(rng.integers(len(m_walls)))], yaw=yaw)
        b.prism((x, y + hgt, z), (d + 0.4, w + 0.5), rng.uniform(2.0, 3.5), m_roof[int(rng.integers(2))], yaw=yaw)
        if amt.get("fence", 0) > 0 and rng.uniform() < 0.8:
            # A picket fence along the front of the garden.
            rot = _yaw(yaw)
            for side in (-1, 1):
                start = rot @ np.array([-d - 4, 0, side * (w + 4)])
                end = rot @ np.array([d + 4, 0, side * (w + 4)])
                mid = (start + end) / 2 + [x, 0, z]
                gy = float(hf.height(np.array(mid[0]), np.array(mid[2])))
                # Two rails on posts every 2.5 m: reads as a fence, not a wall.
                for ry in (0.45, 0.85):
                    b.box((mid[0], gy + ry, mid[2]), ((d + 4), 0.045, 0.03), m_fence, yaw=yaw)
                for f in np.arange(-(d + 4), d + 4 + 1e-6, 2.5):
                    px_, pz_ = mid[0] + rot[0, 0] * f, mid[2] + rot[2, 0] * f
                    py_ = float(hf.height(np.array(px_), np.array(pz_)))
                    b.box((px_, py_ + 0.4, pz_), (0.05, 0.6, 0.05), m_fence, yaw=yaw)
    if amt.get("lamp", 0) > 0:
        lamp_spots = [(s[0] * 0.7 + 3, s[1] * 0.7) for s in spots[: max(1, int(4 * amt["lamp"]))]]
        _lamps(b, lamp_spots, night, hf.height, height=3.5)


# --------------------------------------------------------------------------------------------
# Interior
# --------------------------------------------------------------------------------------------


def _build_room(b: _Builder) -> Room:
    s = b.spec
    rng = np.random.default_rng([s.seed, 0x1A7E])
    e = b.eye
    w = float(rng.uniform(6.5, 8.5))
    d = float(rng.uniform(7.0, 9.5))
    hgt = float(rng.uniform(2.7, 3.2))
    ox = float(rng.uniform(-0.8, 0.8))
    oz = float(rng.uniform(-0.8, 0.8))
    lo = np.array([-w / 2 + ox, -e, -d / 2 + oz])
    hi = np.array([w / 2 + ox, -e + hgt, d / 2 + oz])
    # Windows on -Z and +X, a door on +Z.
    win = []
    for wall, length in ((0, w), (1, d), (3, d)):
        k = 2 if length > 7 else 1
        for i in range(k):
            c = (i + 0.5) / k * length - length / 2
            win.append([wall, c - 0.6, c + 0.6, 0.9, 2.2, 0])
    win.append([2, -0.5, 0.5, 0.0, 2.05, 1])
    amt = s.objects
    wood = (150, 100, 60) if s.interior_style == "wood" else (120, 80, 50)
    m_wood = b.mat("furn_wood", wood, "furniture", P_PLANKS)
    m_dark = b.mat("furn_dark", (90, 60, 40), "furniture", P_PLANKS)
    m_fab = b.mat("fabric", (120, 50, 42) if s.warm_light else (70, 90, 120), "furniture", P_FABRIC)
    m_books = b.mat("books", (150, 110, 80), "furniture", P_BOOKS)
    m_rug = b.mat("rug", (140, 40, 36), "furniture", P_RUG)
    m_stone = b.mat("hearth", (110, 105, 100), "furniture", P_STONEWALL)
    m_fire = b.mat("fire", (255, 160, 60), "furniture", P_FIRE, emissive=(9.0, 3.8, 0.9))
    m_shade = b.mat("lampshade", (240, 220, 180), "lamp", P_GLOW, emissive=(5.0, 3.6, 2.0))
    m_pole = b.mat("lamp_pole_in", (40, 36, 30), "lamp")
    floor = -e
    cx, cz = (lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2
    if amt.get("rug", 0) > 0:
        b.box((cx, floor + 0.01, cz - 0.5), (1.6, 0.012, 1.1), m_rug)
    if amt.get("table", 0) > 0:
        tx, tz = cx + 0.2, cz - 1.6
        b.box((tx, floor + 0.74, tz), (0.8, 0.03, 0.5), m_wood)
        for sx in (-1, 1):
            for sz in (-1, 1):
                b.box((tx + sx * 0.72, floor + 0.36, tz + sz * 0.42), (0.04, 0.36, 0.04), m_wood)
        if amt.get("chair", 0) > 0:
            for sx in (-1, 1):
                chx = tx + sx * 1.15
                b.box((chx, floor + 0.45, tz), (0.22, 0.025, 0.22), m_dark)
                b.box((chx + sx * 0.2, floor + 0.7, tz), (0.025, 0.27, 0.22), m_dark)
                for lx in (-1, 1):
                    for lz in (-1, 1):
                        b.box((chx + lx * 0.19, floor + 0.22, tz + lz * 0.19), (0.025, 0.22, 0.025), m_dark)
    if amt.get("sofa", 0) > 0:
        sz = hi[2] - 1.7
        b.box((cx, floor + 0.22, sz), (1.1, 0.22, 0.45), m_fab)
        b.box((cx, floor + 0.55, sz + 0.38), (1.1, 0.35, 0.12), m_fab)
        for sx in (-1, 1):
            b.box((cx + sx * 1.05, floor + 0.36, sz), (0.12, 0.36, 0.45), m_fab)
    if amt.get("bookshelf", 0) > 0:
        bx = lo[0] + 0.2
        b.box((bx, floor + 1.0, cz + 1.5), (0.2, 1.0, 0.9), m_books)
    if amt.get("bed", 0) > 0:
        b.box((hi[0] - 1.1, floor + 0.25, hi[2] - 1.3), (0.9, 0.25, 1.0), m_fab)
    if amt.get("fireplace", 0) > 0:
        fx = hi[0] - 0.35
        fz = cz + 0.8
        b.box((fx, floor + 0.6, fz + 0.8), (0.35, 0.6, 0.12), m_stone)
        b.box((fx, floor + 0.6, fz - 0.8), (0.35, 0.6, 0.12), m_stone)
        b.box((fx, floor + 1.3, fz), (0.4, 0.12, 0.95), m_stone)
        b.box((fx + 0.05, floor + 2.0, fz), (0.3, 0.6, 0.5), m_stone)
        b.box((fx, floor + 0.05, fz), (0.38, 0.05, 0.7), m_stone)
        b.ellipsoid((fx - 0.05, floor + 0.3, fz), (0.25, 0.25, 0.45), m_fire)
        b.lights.append([fx - 0.8, floor + 0.5, fz, 1.0, 0.5, 0.18, 9.0])
    if amt.get("lamp", 0) > 0:
        lx, lz = lo[0] + 0.6, hi[2] - 0.6
        b.cylinder((lx, floor, lz), 0.03, 1.5, m_pole)
        b.cone((lx, floor + 1.4, lz), 0.28, 0.45, m_shade)
        b.lights.append([lx, floor + 1.5, lz, 1.0, 0.75, 0.45, 7.0])
    return Room(lo, hi, np.array(win, np.float64))


# --------------------------------------------------------------------------------------------
# Lighting
# --------------------------------------------------------------------------------------------


def _lighting(spec: SceneSpec, b: _Builder) -> Lighting:
    night = spec.time_of_day == "night"
    # Sun elevation follows a simple day arc: 0 at 6h and 19h, highest at 12.5h.
    elev = {"dawn": 4.0, "morning": 28.0, "noon": 68.0, "afternoon": 38.0, "sunset": 3.5, "dusk": -3.0, "night": 35.0}[
        spec.time_of_day
    ]
    az = math.radians(spec.sun_azimuth_deg)
    el = math.radians(elev)
    sun = np.array([math.cos(el) * math.sin(az), math.sin(el), -math.cos(el) * math.cos(az)])
    low = max(0.0, 1.0 - elev / 25.0)
    cloud = spec.cloud_cover
    overcast = max(0.0, (cloud - 0.6) / 0.4)
    if night:
        sun_col = np.array([0.10, 0.13, 0.2]) * 0.6
        zen, hor = np.array([0.004, 0.006, 0.018]), np.array([0.015, 0.02, 0.04])
        glow = np.array([0.02, 0.025, 0.04])
        exposure = 3.2
    elif spec.time_of_day == "dusk":
        sun_col = np.zeros(3)
        zen, hor = np.array([0.04, 0.05, 0.14]), np.array([0.45, 0.22, 0.14])
        glow = np.array([0.5, 0.18, 0.06])
        exposure = 2.0
    else:
        warm = np.array([1.0, 0.92 - 0.45 * low, 0.85 - 0.7 * low])
        sun_col = 2.3 * warm * (0.45 + 0.55 * min(1.0, elev / 20.0))  # a low sun still gilds what faces it
        # Low sun: a deep blue zenith and a soft rose horizon; the orange lives in the glow
        # around the sun, so the sky away from it (and the light it sheds) stays cool.
        zen = np.array([0.10, 0.24, 0.62]) * (1 - low) + np.array([0.08, 0.12, 0.36]) * low
        hor = np.array([0.55, 0.68, 0.85]) * (1 - low) + np.array([0.78, 0.46, 0.36]) * low
        glow = np.array([1.0, 0.75, 0.45]) * (1 - low) + np.array([1.6, 0.6, 0.15]) * low
        exposure = 1.0
    # Clouds and weather grey the sky and soften the sun.
    grey = np.array([0.55, 0.58, 0.62]) * (0.12 if night else (0.45 if spec.time_of_day == "dusk" else 1.0))
    zen = zen * (1 - overcast) + grey * 0.8 * overcast
    hor = hor * (1 - overcast) + grey * overcast
    sun_col = sun_col * (1 - 0.85 * overcast)
    glow = glow * (1 - 0.8 * overcast)
    fog = {"fog": 0.035, "rain": 0.004, "snow": 0.008}.get(spec.weather, 0.0) * (0.3 + spec.fog_density)
    fog += 0.02 * spec.fog_density * (spec.weather != "fog")
    haze = 1.0 / 9000.0 if spec.setting != "mountains" else 1.0 / 16000.0
    if spec.weather in ("rain", "snow", "overcast"):
        haze *= 2.5
    ground = np.array([0.25, 0.3, 0.2]) if spec.setting not in ("desert", "canyon") else np.array([0.5, 0.35, 0.22])
    if spec.snow_cover:
        ground = np.array([0.6, 0.62, 0.66])
    ground_bounce = ground * (hor * 0.5 + sun_col * max(sun[1], 0) * 0.15)
    lights = np.array(b.lights, np.float64).reshape(-1, 7)
    if spec.setting == "interior":
        # Daylight or night through the windows; the room is lit by its lamps and fire.
        exposure = 1.4 if night else 1.0
    return Lighting(
        sun_dir=sun,
        sun_color=sun_col,
        zenith=zen,
        horizon=hor,
        ground_bounce=ground_bounce,
        glow=glow,
        fog_color=hor.copy(),
        haze=haze,
        fog=fog,
        fog_height=25.0,
        clouds=cloud,
        night=night or spec.time_of_day == "dusk",
        exposure=exposure,
        lights=lights,
    )


# --------------------------------------------------------------------------------------------
# Ground-truth geometry
# --------------------------------------------------------------------------------------------


def scene_to_mesh(scene: Scene, terrain_radius: float = 800.0, segments: int = 24) -> MeshScene:
    """Export the scene's surfaces as triangles, for evaluating reconstructions.

    Args:
        scene: the world.
        terrain_radius: terrain cells whose centre lies farther than this (metres, in x or z)
            from the camera are left out; the terrain inside is exported exactly (the renderer
            intersects the same triangles).
        segments: facets around each round primitive (ellipsoids, cylinders, cones are smooth
            in the renderer, so these parts are approximations within ~1% of their radius).

    Returns:
        MeshScene with parts "terrain" (or "room"), "objects", and "water" when there is water;
        vertex colours are the materials' base colours (sRGB).
    """
    from ..types import linear_to_srgb

    parts: dict[str, Mesh] = {}
    if scene.terrain is not None:
        hf = scene.terrain
        k = int(min(hf.n // 2, math.ceil(terrain_radius / hf.cell)))
        c = hf.n // 2
        idx = np.arange(c - k, c + k + 1)
        xs = -hf.half + hf.cell * idx
        gx, gz = np.meshgrid(xs, xs, indexing="ij")
        gy = hf.heights[np.ix_(idx, idx)]
        verts = np.stack([gx, gy, gz], -1).reshape(-1, 3)
        m = len(idx)
        i, j = np.meshgrid(np.arange(m - 1), np.arange(m - 1), indexing="ij")
        v00 = (i * m + j).ravel()
        v10 = ((i + 1) * m + j).ravel()
        v01 = (i * m + j + 1).ravel()
        v11 = ((i + 1) * m + j + 1).ravel()
        # Split along (0,0)-(1,1) like the renderer; CCW seen from +Y.
        faces = np.concatenate([np.stack([v00, v01, v10], 1), np.stack([v11, v10, v01], 1)])
        parts["terrain"] = Mesh(verts.astype(np.float32), faces.astype(np.int32))
        if scene.water_level is not None:
            r = terrain_radius
            wl = scene.water_level
            parts["water"] = Mesh(
                np.array([[-r, wl, -r], [r, wl, -r], [-r, wl, r], [r, wl, r]], np.float32),
                np.array([[0, 2, 1], [1, 2, 3]], np.int32),
            )
    if scene.room is not None:
        lo, hi = scene.room.lo, scene.room.hi
        parts["room"] = _box_mesh(lo, hi, inward=True)
    p = scene.prims
    albedo = linear_to_srgb(scene.mat_albedo)
    vs, fs, cs = [], [], []
    off = 0
    for q in range(len(p)):
        v, f = _prim_mesh(p, q, segments)
        vs.append(v)
        fs.append(f + off)
        cs.append(np.repeat(albedo[p.material[q]][None], len(v), 0))
        off += len(v)
    if vs:
        parts["objects"] = Mesh(
            np.concatenate(vs).astype(np.float32),
            np.concatenate(fs).astype(np.int32),
            vertex_colors=np.concatenate(cs).astype(np.float32),
        )
    return MeshScene(parts, {"source": "procedural", "primitives": len(p), "terrain_radius": terrain_radius})


def _box_mesh(lo: np.ndarray, hi: np.ndarray, inward: bool = False) -> Mesh:
    pts = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])], np.float64)
    v, f = _hull_mesh(pts)
    if inward:
        f = f[:, ::-1]
    return Mesh(v.astype(np.float32), f.astype(np.int32))


def _hull_mesh(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import ConvexHull

    hull = ConvexHull(pts)
    f = hull.simplices.copy()
    # Orient every face outwards (its normal away from the centroid).
    c = pts.mean(0)
    tri = pts[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = ((tri[:, 0] - c) * n).sum(1) < 0
    f[flip] = f[flip][:, ::-1]
    return pts, f


def _prim_mesh(p: Primitives, q: int, seg: int) -> tuple[np.ndarray, np.ndarray]:
    kind = int(p.kind[q])
    if kind == POLYTOPE:
        return _hull_mesh(np.asarray(p.corners[q], np.float64))
    c, sz = p.center[q], p.size[q]
    ang = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    if kind == ELLIPSOID:
        rings = max(4, seg // 2)
        th = np.linspace(0, np.pi, rings + 1)[1:-1]
        ring = np.stack(
            [
                np.sin(th)[:, None] * np.cos(ang)[None],
                np.cos(th)[:, None] * np.ones_like(ang)[None],
                np.sin(th)[:, None] * np.sin(ang)[None],
            ],
            -1,
        ).reshape(-1, 3)
        pts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * sz + c
        return _hull_mesh(pts)
    r, h = sz[0], sz[1]
    circle = np.stack([np.cos(ang) * r, np.zeros_like(ang), np.sin(ang) * r], -1)
    if kind == CYLINDER:
        pts = np.concatenate([circle, circle + [0, h, 0]]) + c
    else:
        pts = np.concatenate([circle, [[0, h, 0]]]) + c
    return _hull_mesh(pts)
