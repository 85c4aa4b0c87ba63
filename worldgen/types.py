"""worldgen's plain data types: arrays with written contracts that every stage accepts.

All types are frozen dataclasses whose arrays are made read-only on construction, so a value
handed from one stage to the next can never drift. Geometry is in the world frame of
``docs/conventions.md``: right-handed, +Y up, -Z forward, metres, capture camera at the origin.

Letters used in shapes: H/W pixels, N splats, V vertices, F faces, K SH coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from ._check import check_finite, check_shape, frozen
from .errors import InputError

SH_C0 = 0.28209479177387814
"""Zeroth-order real spherical-harmonic constant: colour = 0.5 + SH_C0 * dc."""

SEMANTIC_CLASSES: tuple[str, ...] = (
    "sky",
    "terrain",
    "water",
    "tree",
    "rock",
    "building",
    "house",
    "tower",
    "lamp",
    "fence",
    "furniture",
    "wall",
    "floor",
    "ceiling",
    "window",
    "door",
    "road",
    "vegetation",
    "object",
)
"""Default class table: index = class id. ``sky`` is always 0, ``terrain`` 1, ``water`` 2."""

SKY, TERRAIN, WATER = 0, 1, 2


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Panorama:
    """An equirectangular 360° colour image (see docs/conventions.md for the mapping).

    Args:
        image: colour in [0, 1], encoded with ``transfer``. [H, W, 3] float32, W == 2H.
        transfer: the transfer function of ``image``: "srgb" (as stored on disk) or "linear".
    """

    image: np.ndarray
    transfer: Literal["srgb", "linear"] = "srgb"

    def __post_init__(self) -> None:
        img = np.ascontiguousarray(self.image, dtype=np.float32)
        dims = check_shape(img, ["H", "W", 3], "panorama image")
        if dims["W"] != 2 * dims["H"]:
            raise InputError(
                f"panorama is {dims['W']}x{dims['H']} but an equirectangular panorama must be 2:1 "
                f"(width = 2 x height); resize or pad it to {2 * dims['H']}x{dims['H']}"
            )
        if dims["H"] < 2:
            raise InputError(f"panorama is {dims['W']}x{dims['H']}; it needs at least 2 rows")
        check_finite(img, "panorama image")
        if img.min() < 0.0 or img.max() > 1.0:
            raise InputError("panorama colours must lie in [0, 1]; divide 8-bit values by 255")
        if self.transfer not in ("srgb", "linear"):
            raise InputError(f"unknown transfer function {self.transfer!r}; use 'srgb' or 'linear'")
        object.__setattr__(self, "image", img)
        frozen(img)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @classmethod
    def from_uint8(cls, image: np.ndarray) -> Panorama:
        """Build from 8-bit sRGB. image: [H, W, 3] uint8 (an alpha channel is dropped)."""
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.dtype != np.uint8:
            raise InputError(f"expected an 8-bit image, got {arr.dtype}; convert it to 8-bit sRGB")
        return cls(arr.astype(np.float32) / 255.0, "srgb")

    def to_uint8(self) -> np.ndarray:
        """8-bit sRGB copy. Returns: [H, W, 3] uint8."""
        srgb = self.image if self.transfer == "srgb" else linear_to_srgb(self.image)
        return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)

    def linear(self) -> np.ndarray:
        """Linear-light copy of the colours. Returns: [H, W, 3] float32."""
        return self.image.copy() if self.transfer == "linear" else srgb_to_linear(self.image)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding. x: [...] float in [0, 1]. Returns float32 [...]."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding. x: [...] float in [0, 1]. Returns float32 [...]."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


@dataclass(frozen=True, eq=False)
class DepthMap:
    """Metric depth for every pixel of a panorama or a perspective view.

    Args:
        depth: Euclidean distance from the camera centre along each pixel's ray (not z-depth),
            metres; +inf exactly where ``sky`` is True, finite and > 0 elsewhere. [H, W] float32
        sky: True where the ray escapes to the sky. [H, W] bool

    Convention:
        NaN is never valid. A pixel with no estimate is not representable: backends must fill it.
    """

    depth: np.ndarray
    sky: np.ndarray

    def __post_init__(self) -> None:
        d = np.ascontiguousarray(self.depth, dtype=np.float32)
        s = np.ascontiguousarray(self.sky, dtype=bool)
        dims = check_shape(d, ["H", "W"], "depth")
        check_shape(s, [dims["H"], dims["W"]], "sky mask")
        if np.isnan(d).any():
            raise InputError(
                f"depth holds {int(np.isnan(d).sum())} NaN value(s); fill them (or mark sky as +inf) before use"
            )
        ground = ~s
        if ground.any():
            g = d[ground]
            if not np.isfinite(g).all():
                raise InputError("depth is infinite outside the sky mask; mark those pixels as sky")
            if (g <= 0).any():
                raise InputError(
                    f"depth has {int((g <= 0).sum())} pixel(s) <= 0 m; depth must be a positive distance in metres"
                )
        if s.any() and not np.isposinf(d[s]).all():
            d = d.copy()
            d[s] = np.inf
        object.__setattr__(self, "depth", d)
        object.__setattr__(self, "sky", s)
        frozen(d, s)

    @classmethod
    def from_array(cls, depth: np.ndarray) -> DepthMap:
        """Build from a depth array where +inf (or 0) marks sky. depth: metres [H, W]."""
        d = np.asarray(depth, dtype=np.float32)
        if np.isnan(d).any():
            raise InputError(f"depth holds {int(np.isnan(d).sum())} NaN value(s); fill them, or use +inf or 0 for sky")
        sky = np.isposinf(d) | (d == 0)
        if (d < 0).any() or np.isneginf(d).any():
            raise InputError("depth has negative values; depth must be a distance in metres (>= 0)")
        return cls(np.where(sky, np.inf, d).astype(np.float32), sky)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.depth.shape[0]), int(self.depth.shape[1]))

    @cached_property
    def valid(self) -> np.ndarray:
        """Pixels with a finite surface distance. [H, W] bool"""
        v = ~self.sky
        frozen(v)
        return v


@dataclass(frozen=True, eq=False)
class SemanticLayers:
    """Per-pixel class ids.

    Args:
        ids: class id per pixel, an index into ``classes``. [H, W] uint8
        classes: class names by id; ``classes[0]`` must be "sky".
    """

    ids: np.ndarray
    classes: tuple[str, ...] = SEMANTIC_CLASSES

    def __post_init__(self) -> None:
        ids = np.ascontiguousarray(self.ids)
        check_shape(ids, ["H", "W"], "semantic ids")
        if ids.dtype != np.uint8:
            if ids.size and (ids.min() < 0 or ids.max() > 255):
                raise InputError("semantic ids must fit in 0..255")
            ids = ids.astype(np.uint8)
        classes = tuple(self.classes)
        if not classes or classes[0] != "sky":
            raise InputError("semantic class 0 must be 'sky'")
        if ids.size and int(ids.max()) >= len(classes):
            raise InputError(f"semantic id {int(ids.max())} has no class name ({len(classes)} classes)")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "classes", classes)
        frozen(ids)

    def mask(self, name: str) -> np.ndarray:
        """Pixels of class ``name``. Returns: [H, W] bool."""
        if name not in self.classes:
            raise InputError(f"unknown semantic class {name!r}; known: {', '.join(self.classes)}")
        return self.ids == self.classes.index(name)


# --------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Camera:
    """A camera in the world frame.

    Args:
        model: "perspective" (pinhole) or "equirect" (360°).
        width: image width, pixels.
        height: image height, pixels.
        fx, fy: focal lengths, pixels (perspective only).
        cx, cy: principal point, pixels, measured from the top-left corner of the image
            (pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is at (i + 0.5, j + 0.5)).
        cam_to_world: camera pose. [4, 4] float64

    Convention:
        Camera axes follow glTF: +X right, +Y up, the camera looks along -Z. Image rows grow
        downwards. An equirect camera ignores fx, fy, cx, cy.
    """

    model: Literal["perspective", "equirect"]
    width: int
    height: int
    fx: float = 0.0
    fy: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        if self.model not in ("perspective", "equirect"):
            raise InputError(f"unknown camera model {self.model!r}; use 'perspective' or 'equirect'")
        if self.width < 1 or self.height < 1:
            raise InputError(f"camera size {self.width}x{self.height} must be positive")
        if self.model == "equirect" and self.width != 2 * self.height:
            raise InputError(f"an equirect camera must be 2:1, got {self.width}x{self.height}")
        if self.model == "perspective" and (self.fx <= 0 or self.fy <= 0):
            raise InputError("a perspective camera needs positive focal lengths fx, fy (pixels)")
        m = np.array(self.cam_to_world, dtype=np.float64)
        check_shape(m, [4, 4], "cam_to_world")
        check_finite(m, "cam_to_world")
        object.__setattr__(self, "cam_to_world", m)
        frozen(m)

    @classmethod
    def perspective(cls, width: int, height: int, fov_x_deg: float, cam_to_world: np.ndarray | None = None) -> Camera:
        """Centred pinhole camera with square pixels and horizontal field of view ``fov_x_deg``."""
        if not 0.0 < fov_x_deg < 180.0:
            raise InputError(f"field of view {fov_x_deg}° must lie in (0, 180)")
        f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
        return cls(
            "perspective",
            width,
            height,
            f,
            f,
            width / 2,
            height / 2,
            np.eye(4) if cam_to_world is None else cam_to_world,
        )

    @classmethod
    def equirect(cls, width: int, cam_to_world: np.ndarray | None = None) -> Camera:
        return cls("equirect", width, width // 2, cam_to_world=np.eye(4) if cam_to_world is None else cam_to_world)

    @property
    def world_to_cam(self) -> np.ndarray:
        """Inverse of ``cam_to_world``. [4, 4] float64"""
        return np.linalg.inv(self.cam_to_world)

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsics for the glTF camera frame flipped to +Y-down/+Z-forward (OpenCV). [3, 3]"""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Gaussians
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GaussianCloud:
    """3D Gaussian splats in the world frame, stored as optimisation parameters.

    Args:
        means: centres, metres. [N, 3] float32
        quats: unit rotation quaternions, (w, x, y, z) order, local -> world. [N, 4] float32
        log_scales: natural log of the per-axis standard deviations, log-metres. [N, 3] float32
        opacity_logits: logit of opacity in (0, 1). [N] float32
        sh: real spherical-harmonic colour coefficients, basis-major; ``sh[:, 0]`` is the DC term
            (colour = 0.5 + SH_C0 * dc, sRGB-encoded, as in 3DGS). [N, K, 3] float32,
            K = (degree + 1)^2 for degree 0..3.

    Convention:
        Activated values are ``scales = exp(log_scales)`` and ``opacities = sigmoid(logits)``.
        Writers convert to what each file format expects; nothing here is in a file's frame.
    """

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh: np.ndarray

    def __post_init__(self) -> None:
        means = np.ascontiguousarray(self.means, dtype=np.float32)
        n = check_shape(means, ["N", 3], "means")["N"]
        quats = np.ascontiguousarray(self.quats, dtype=np.float32)
        check_shape(quats, [n, 4], "quats")
        log_scales = np.ascontiguousarray(self.log_scales, dtype=np.float32)
        check_shape(log_scales, [n, 3], "log_scales")
        logits = np.ascontiguousarray(self.opacity_logits, dtype=np.float32)
        check_shape(logits, [n], "opacity_logits")
        sh = np.ascontiguousarray(self.sh, dtype=np.float32)
        k = check_shape(sh, [n, "K", 3], "sh")["K"]
        if k not in (1, 4, 9, 16):
            raise InputError(f"sh has {k} coefficients per channel; expected 1, 4, 9 or 16 (degree 0-3)")
        for arr, name in (
            (means, "means"),
            (quats, "quats"),
            (log_scales, "log_scales"),
            (logits, "opacity_logits"),
            (sh, "sh"),
        ):
            check_finite(arr, f"gaussian {name}", "drop or repair those splats")
        norms = np.linalg.norm(quats, axis=1)
        if n and (norms < 1e-8).any():
            raise InputError("gaussian quats contain zero-length quaternions")
        if n and np.abs(norms - 1).max() > 1e-3:
            quats = (quats / norms[:, None]).astype(np.float32)
        for name, arr in (
            ("means", means),
            ("quats", quats),
            ("log_scales", log_scales),
            ("opacity_logits", logits),
            ("sh", sh),
        ):
            object.__setattr__(self, name, arr)
        frozen(means, quats, log_scales, logits, sh)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return int(round(math.sqrt(self.sh.shape[1]))) - 1

    @property
    def scales(self) -> np.ndarray:
        """Activated standard deviations, metres. [N, 3] float32"""
        return np.exp(self.log_scales.astype(np.float64)).astype(np.float32)

    @property
    def opacities(self) -> np.ndarray:
        """Activated opacities in (0, 1). [N] float32"""
        return (1.0 / (1.0 + np.exp(-self.opacity_logits.astype(np.float64)))).astype(np.float32)

    @property
    def colors(self) -> np.ndarray:
        """View-independent (DC) colour, sRGB in [0, 1], clipped. [N, 3] float32"""
        return np.clip(0.5 + SH_C0 * self.sh[:, 0, :], 0.0, 1.0).astype(np.float32)

    @classmethod
    def from_activated(
        cls,
        means: np.ndarray,
        quats: np.ndarray,
        scales: np.ndarray,
        opacities: np.ndarray,
        colors: np.ndarray | None = None,
        sh: np.ndarray | None = None,
    ) -> GaussianCloud:
        """Build from activated values (what viewers and gsplat's ``rasterization`` take).

        Args:
            scales: standard deviations, metres, > 0. [N, 3]
            opacities: in (0, 1); clamped to [1e-6, 1 - 1e-6] so the logit stays finite. [N]
            colors: sRGB in [0, 1], used for the DC term when ``sh`` is None. [N, 3]
            sh: full coefficients. [N, K, 3]
        """
        scales = np.asarray(scales, dtype=np.float64)
        if (scales <= 0).any():
            raise InputError("gaussian scales must be > 0 metres")
        op = np.clip(np.asarray(opacities, dtype=np.float64), 1e-6, 1 - 1e-6)
        if sh is None:
            if colors is None:
                raise InputError("give either colors or sh")
            sh = ((np.asarray(colors, dtype=np.float64) - 0.5) / SH_C0)[:, None, :]
        return cls(means, quats, np.log(scales), np.log(op / (1 - op)), sh)

    def subset(self, index: np.ndarray) -> GaussianCloud:
        """Splats selected by a boolean mask [N] or an index array [M]."""
        return GaussianCloud(
            self.means[index], self.quats[index], self.log_scales[index], self.opacity_logits[index], self.sh[index]
        )

    @classmethod
    def concatenate(cls, clouds: list[GaussianCloud]) -> GaussianCloud:
        """All splats of ``clouds``, in order; higher SH bands are zero-padded to the largest degree."""
        if not clouds:
            raise InputError("concatenate needs at least one GaussianCloud")
        k = max(c.sh.shape[1] for c in clouds)
        sh = [np.pad(c.sh, ((0, 0), (0, k - c.sh.shape[1]), (0, 0))) for c in clouds]
        cat = lambda name: np.concatenate([getattr(c, name) for c in clouds])  # noqa: E731
        return cls(cat("means"), cat("quats"), cat("log_scales"), cat("opacity_logits"), np.concatenate(sh))


# --------------------------------------------------------------------------------------------
# Meshes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh in the world frame.

    Args:
        vertices: positions, metres. [V, 3] float32
        faces: vertex indices, counter-clockwise seen from the front. [F, 3] int32
        normals: unit vertex normals or None. [V, 3] float32
        uvs: texture coordinates or None; (0, 0) is the top-left corner of ``texture`` and v
            grows downwards (glTF's convention). [V, 2] float32
        texture: base colour image or None, 8-bit sRGB. [Ht, Wt, 3] uint8
        vertex_colors: per-vertex sRGB colour in [0, 1] or None. [V, 3] float32
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.ascontiguousarray(self.vertices, dtype=np.float32)
        nv = check_shape(v, ["V", 3], "mesh vertices")["V"]
        check_finite(v, "mesh vertices")
        f = np.ascontiguousarray(self.faces)
        check_shape(f, ["F", 3], "mesh faces")
        if f.size and (f.min() < 0 or f.max() >= nv):
            raise InputError(f"mesh faces index vertices outside 0..{nv - 1}")
        f = f.astype(np.int32)
        n = uv = tex = vc = None
        if self.normals is not None:
            n = np.ascontiguousarray(self.normals, dtype=np.float32)
            check_shape(n, [nv, 3], "mesh normals")
            check_finite(n, "mesh normals")
        if self.uvs is not None:
            uv = np.ascontiguousarray(self.uvs, dtype=np.float32)
            check_shape(uv, [nv, 2], "mesh uvs")
            check_finite(uv, "mesh uvs")
        if self.texture is not None:
            tex = np.ascontiguousarray(self.texture)
            check_shape(tex, ["Ht", "Wt", 3], "mesh texture")
            if tex.dtype != np.uint8:
                raise InputError("mesh texture must be 8-bit sRGB (uint8)")
        if self.vertex_colors is not None:
            vc = np.ascontiguousarray(self.vertex_colors, dtype=np.float32)
            check_shape(vc, [nv, 3], "mesh vertex colours")
            check_finite(vc, "mesh vertex colours")
        for name, arr in (
            ("vertices", v),
            ("faces", f),
            ("normals", n),
            ("uvs", uv),
            ("texture", tex),
            ("vertex_colors", vc),
        ):
            object.__setattr__(self, name, arr)
        frozen(v, f, n, uv, tex, vc)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @cached_property
    def bounds(self) -> np.ndarray:
        """Axis-aligned bounds, metres: [[min x, y, z], [max x, y, z]]. [2, 3] float32"""
        if self.n_vertices == 0:
            b = np.zeros((2, 3), np.float32)
        else:
            b = np.stack([self.vertices.min(0), self.vertices.max(0)])
        frozen(b)
        return b

    @cached_property
    def face_normals(self) -> np.ndarray:
        """Unit face normals by the right-hand rule (zero for degenerate faces). [F, 3] float32"""
        tri = self.vertices[self.faces].astype(np.float64)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        out = np.where(ln > 0, n / np.maximum(ln, 1e-300), 0.0).astype(np.float32)
        frozen(out)
        return out


@dataclass(frozen=True, eq=False)
class MeshScene:
    """Named mesh parts of one world, all in the world frame.

    Well-known part names: ``world`` (the textured surface), ``sky`` (the far dome),
    ``collision`` (a simplified ground-and-obstacles mesh for physics); every other part is
    exported as visible geometry, except ``lod1``, ``lod2``... which the exporters skip (LODs are
    not part of the product: docs/engines.md). Exporters name parts per engine (e.g. Unreal's
    ``UCX_`` prefix for collision).

    Args:
        parts: part name -> mesh; names are [A-Za-z0-9_]+ and ordered as given.
        report: what the extractor did (triangle counts, texture sizes...), JSON-serialisable.
    """

    parts: dict[str, Mesh]
    report: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        import re

        for name, mesh in self.parts.items():
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise InputError(f"mesh part name {name!r} must be letters, digits and underscores")
            if not isinstance(mesh, Mesh):
                raise InputError(f"mesh part {name!r} is a {type(mesh).__name__}, expected Mesh")
        object.__setattr__(self, "parts", dict(self.parts))

    def __getitem__(self, name: str) -> Mesh:
        return self.parts[name]

    def __contains__(self, name: object) -> bool:
        return name in self.parts
