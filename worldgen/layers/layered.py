"""The layered panorama: the visible first surface plus the background hidden behind depth edges.

:func:`build_layers` runs on a working grid (the panorama area-averaged to at most
``work_width`` columns): it continues the background's geometry behind every occluding edge
(:mod:`worldgen.layers.geometry`) out to what a viewer ``walk_radius`` metres from the capture
point can see, and inpaints that background's colour in panorama space
(:mod:`worldgen.layers.inpaint`, guided by the continued background's log-depth). The result,
:class:`HiddenLayer`, is plain arrays both assets use: the mesh stage triangulates it into its
own textured part (:mod:`worldgen.mesh.layers`), the splat stage places splats on it
(:func:`worldgen.splats.backfill.layer_gaussians`). The foreground keeps its own geometry: the
hidden layer only holds the background surface, never anything between the two.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._check import check_rgbd
from ..errors import InputError
from ..types import DepthMap, Panorama
from .geometry import continue_background, foreground_backs
from .inpaint import INPAINTERS, inpaint


@dataclass(frozen=True)
class LayerConfig:
    """Options of the hidden-surface completion.

    Args:
        walk_radius: how far from the capture point a viewer may walk, metres; the hidden
            background is continued far enough to cover what they see (default 2.0; 0 = none).
        work_width: columns of the working grid (default 1024; narrower panoramas keep theirs).
        edge_ratio: depth ratio of an occluding edge (default 1.1, docs/geometry.md's bridge ratio).
        step_ratio: smallest depth step whose hidden side is completed (default 0 = ``edge_ratio``;
            the mesh passes its sheet's cut threshold, exp(jump_min) = 1.02, so that no step the
            sheet cuts opens a crack when the viewer moves: geometry.continue_background).
        max_band_deg: widest band continued behind one edge, degrees (default 45).
        inpaint: registered inpainter for the hidden colour: "auto" (default: "diffusion" when
            ``fill_model`` is set, else "patchmatch"), "patchmatch", "diffuse", "diffusion".
        guide_weight: weight of log-depth against colour in the inpainting patch distance (default 1).
        fill_model, fill_prompt, fill_steps: the "diffusion" inpainter's pipeline folder (the
            ``fill`` model role), prompt ("" = neutral) and steps (worldgen/layers/diffusion.py).
        nested: also complete the nearest hidden background where it lies in front of the
            farthest one (a second layer, :attr:`HiddenLayer.nearer`): behind a trunk in front
            of another trunk the second trunk's hidden side, not only the ground. Default False
            (it costs a second propagation and inpainting; the mesh turns it on).
    """

    walk_radius: float = 2.0
    work_width: int = 1024
    edge_ratio: float = 1.1
    step_ratio: float = 0.0
    max_band_deg: float = 45.0
    inpaint: str = "auto"
    guide_weight: float = 1.0
    fill_model: str = ""
    fill_prompt: str = ""
    fill_steps: int = 20
    nested: bool = False
    backs: bool = False

    def __post_init__(self) -> None:
        if not (self.walk_radius >= 0 and math.isfinite(self.walk_radius)):
            raise InputError(f"walk_radius={self.walk_radius} must be a distance >= 0 metres")
        if self.work_width < 8 or self.edge_ratio <= 1 or not 0 < self.max_band_deg <= 180:
            raise InputError("layers need work_width >= 8, edge_ratio > 1 and max_band_deg in (0, 180]")
        if self.step_ratio and not 1 < self.step_ratio <= self.edge_ratio:
            raise InputError(f"step_ratio={self.step_ratio} must be 0 (= edge_ratio) or in (1, edge_ratio]")
        if self.inpaint not in INPAINTERS:
            raise InputError(f"unknown inpainter {self.inpaint!r}; use one of {', '.join(sorted(INPAINTERS))}")


@dataclass(frozen=True)
class HiddenLayer:
    """The background hidden behind the foreground, on an h x 2h working grid.

    Args:
        hidden: pixels whose ray, past its own surface, continues onto a hidden background. [h, w] bool
        depth: ray distance of the hidden background where ``hidden`` (+inf where it is sky), the
            pixel's own first-surface distance elsewhere, metres. [h, w] float32
        sky: hidden pixels whose background is the sky. [h, w] bool
        seeds: visible background pixels next to occluding edges that some hidden pixel
            continues (the layer's seam with the visible world). [h, w] bool
        colour: sRGB in [0, 1]: the panorama with the hidden pixels replaced by the inpainted
            background. [h, w, 3] float32
        report: what was done (counts, seconds), JSON-serialisable.
        nearer: a second HiddenLayer (same grid, same field meanings, never sky) holding the
            nearest hidden background where it lies in front of this one's by more than the edge
            ratio, or where this one has none: behind nested occluders, the middle occluder's
            hidden side. None when ``LayerConfig.nested`` is off or nothing is nested.
        back: a HiddenLayer (same grid, never sky, ``colour`` the panorama's own) holding the
            foreground's own back behind its left and right silhouettes, where a viewer
            ``walk_radius`` aside sees it: the far side of a trunk or a canopy. None when
            ``LayerConfig.backs`` is off or there is none.
    """

    hidden: np.ndarray
    depth: np.ndarray
    sky: np.ndarray
    seeds: np.ndarray
    colour: np.ndarray
    report: dict = field(default_factory=dict)
    nearer: HiddenLayer | None = None
    back: HiddenLayer | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.hidden.shape

    @property
    def surface(self) -> np.ndarray:
        """Hidden pixels whose background is a surface (not sky). [h, w] bool"""
        return self.hidden & ~self.sky


def working_grid(panorama: Panorama, depth: DepthMap, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour sRGB [h, w, 3] float32, depth [h, w] float32 with +inf sky, sky [h, w] bool) at <= width columns.

    Colour is area-averaged; depth takes the nearest of each block's surface pixels (a block
    holding any surface is surface), so foreground silhouettes never shrink.
    """
    from ..splats.init import _srgb

    colour = _srgb(panorama).astype(np.float32)
    d = np.where(depth.valid, depth.depth, np.inf).astype(np.float32)
    H, W = depth.shape
    s = max(1, math.ceil(W / width))
    if s == 1:
        return colour, d, ~depth.valid
    h, w = H // s, W // s
    colour = colour[: h * s, : w * s].reshape(h, s, w, s, 3).mean((1, 3))
    d = d[: h * s, : w * s].reshape(h, s, w, s).min((1, 3))
    return colour.astype(np.float32), d, ~np.isfinite(d)


def build_layers(
    panorama: Panorama, depth: DepthMap, config: LayerConfig = LayerConfig(), seed: int = 0
) -> HiddenLayer:
    """Continue and inpaint the background hidden behind every occluding edge.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres (+inf = sky), H x W.
        config: see :class:`LayerConfig`.
        seed: random seed of the inpainting (same inputs and seed give the same layer).

    Returns:
        HiddenLayer on the working grid (at most ``config.work_width`` columns).
    """
    check_rgbd(panorama, depth)
    t0 = time.perf_counter()
    colour, d, sky = working_grid(panorama, depth, config.work_width)
    surface = ~sky
    near = None
    if config.walk_radius > 0 and surface.any():
        kw = dict(
            walk_radius=config.walk_radius,
            edge_ratio=config.edge_ratio,
            max_band_deg=config.max_band_deg,
            step_ratio=config.step_ratio or None,
        )
        bg = continue_background(d, surface, sky, **kw)
        if config.nested:
            near = continue_background(d, surface, sky, nearest=True, **kw)
            keep = near["hidden"] & ~near["sky"]
            with np.errstate(invalid="ignore"):
                keep &= ~bg["hidden"] | (near["depth"] * config.edge_ratio < bg["depth"])
            # Not in front of hidden sky: there the nearest seed is whatever surface borders the
            # sky (through a window the lawn and the house), which would spread over the whole
            # hidden sky as a curtain in front of the dome.
            keep &= ~bg["sky"]
            near = None if not keep.any() else {**near, "hidden": keep}
    else:
        z = np.zeros(d.shape, bool)
        bg = {"hidden": z, "depth": d, "sky": z, "seeds": z, "passes": np.asarray(0)}
    t1 = time.perf_counter()
    hidden = bg["hidden"]
    filled = colour
    name = config.inpaint if config.inpaint != "auto" else ("diffusion" if config.fill_model else "patchmatch")
    fill_facts = None
    if hidden.any():
        # Guide: log-depth of what each pixel shows once the foreground is removed (sky: a fixed
        # level beyond the farthest surface), so sky patches fill sky and floor patches fill floor.
        far = float(d[surface].max()) if surface.any() else 1.0
        bd = np.where(np.isfinite(bg["depth"]), bg["depth"], 2.0 * far)
        guide = np.log(np.maximum(bd, 1e-3)).astype(np.float32)
        # Sources by class: hidden sky only from the sky, hidden surfaces only from surfaces; and
        # near the seed each hidden pixel continues (the background side of its edge), not from
        # another surface at the same distance elsewhere (the coast's band hidden below the
        # horizon was painted from the sky above it and from the sea far to the side).
        classes = np.where(hidden, bg["sky"], sky).astype(np.int8)
        sources = {"classes": classes, "anchor": bg["source"]}
        if name == "diffusion":  # the fill model paints one canonical grid for every stage
            from .diffusion import fill_layer_colour

            filled, fill_facts = fill_layer_colour(panorama, depth, config, colour, hidden, guide, seed, sources)
        else:
            filled = inpaint(name, colour, hidden, guide, seed, **sources)
    nearer = None
    if near is not None:
        nd = np.where(near["hidden"], near["depth"], d)
        far = float(d[surface].max())
        guide = np.log(np.maximum(np.where(np.isfinite(nd), nd, 2.0 * far), 1e-3)).astype(np.float32)
        # The nested layer is small and thin: PatchMatch paints it even when a fill model paints the main one.
        nfill = inpaint(
            "patchmatch" if name == "diffusion" else name,
            colour,
            near["hidden"],
            guide,
            seed + 1,
            classes=(sky & ~near["hidden"]).astype(np.int8),
            anchor=near["source"],
        )
        nearer = HiddenLayer(
            near["hidden"],
            nd.astype(np.float32),
            np.zeros(d.shape, bool),
            near["seeds"] & np.isfinite(d),
            nfill.astype(np.float32),
            {"hidden_pixels": int(near["hidden"].sum())},
        )
    back = None
    if config.backs and config.walk_radius > 0 and surface.any():
        behind = np.where(bg["hidden"], bg["depth"], np.inf)
        fb = foreground_backs(d, surface, behind, walk_radius=config.walk_radius, edge_ratio=config.edge_ratio)
        if fb["hidden"].any():
            z = np.zeros(d.shape, bool)
            back = HiddenLayer(fb["hidden"], fb["depth"], z, z, colour, {"hidden_pixels": int(fb["hidden"].sum())})
    t2 = time.perf_counter()
    report = {
        "walk_radius_m": config.walk_radius,
        "grid": [int(d.shape[0]), int(d.shape[1])],
        "hidden_pixels": int(hidden.sum()),
        "hidden_share": round(float(hidden.mean()), 5),
        "hidden_sky_pixels": int(bg["sky"].sum()),
        "passes": int(bg["passes"]),
        "inpainter": name,
        "nested_pixels": 0 if nearer is None else int(nearer.hidden.sum()),
        "back_pixels": 0 if back is None else int(back.hidden.sum()),
        "seconds": {"geometry": round(t1 - t0, 3), "inpaint": round(t2 - t1, 3)},
    }
    if fill_facts is not None:
        report["fill"] = fill_facts
    return HiddenLayer(hidden, bg["depth"], bg["sky"], bg["seeds"], filled.astype(np.float32), report, nearer, back)


__all__ = ["HiddenLayer", "LayerConfig", "build_layers", "working_grid"]
