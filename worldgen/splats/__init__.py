"""Gaussian splats: initialisation from RGB-D, rasterization (CPU and gsplat), refinement.

Public names (heavy dependencies such as torch load only when a function runs):
    RefineConfig, refine_gaussians: optimise splats against views of the panorama;
    rasterize_cpu, render_cloud, select_rasterizer: the PyTorch rasterizer, rendering a
    GaussianCloud through worldgen cameras, and which rasterizer a run uses and why;
    capture_views, warped_views: the training views.
"""

from .rasterize import rasterize_cpu, render_cloud, select_rasterizer
from .refine import RefineConfig, refine_gaussians
from .views import capture_views, warped_views

__all__ = [
    "RefineConfig",
    "capture_views",
    "rasterize_cpu",
    "refine_gaussians",
    "render_cloud",
    "select_rasterizer",
    "warped_views",
]
