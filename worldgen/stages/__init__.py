"""Stages: panorama -> depth -> gaussians -> mesh -> export. Each module registers its built-in backends."""
