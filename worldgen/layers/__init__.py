"""Layered completion of the surfaces hidden behind depth edges, shared by the mesh and the splats.

Public API:
    build_layers(panorama, depth, LayerConfig()) -> HiddenLayer   (geometry continued, colour inpainted)
    continue_background(depth, surface, sky, walk_radius=...)      (geometry only)
    inpaint(name, image, hole, guide, classes=, anchor=)           (registered inpainters; sources by class and anchor)
"""

from . import diffusion as _diffusion  # noqa: F401  (registers the "diffusion" inpainter)
from .geometry import continue_background, occluding_edges
from .inpaint import INPAINTERS, inpaint, register_inpainter
from .layered import HiddenLayer, LayerConfig, build_layers

__all__ = [
    "INPAINTERS",
    "HiddenLayer",
    "LayerConfig",
    "build_layers",
    "continue_background",
    "inpaint",
    "occluding_edges",
    "register_inpainter",
]
