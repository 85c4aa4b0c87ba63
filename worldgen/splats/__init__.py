"""Gaussian splats: initialisation from RGB-D, rasterization (CPU and gsplat), refinement."""
