"""Panorama and camera geometry: vectorised, numpy in, numpy out."""

from .equirect import (
    cubemap_cameras,
    cubemap_to_equirect,
    direction_to_lonlat,
    direction_to_pixel,
    equirect_directions,
    equirect_to_cubemap,
    equirect_to_perspective,
    lonlat_to_direction,
    look_rotation,
    perspective_directions,
    perspective_to_equirect,
    pixel_to_direction,
    sample_equirect,
)

__all__ = [
    "cubemap_cameras",
    "cubemap_to_equirect",
    "direction_to_lonlat",
    "direction_to_pixel",
    "equirect_directions",
    "equirect_to_cubemap",
    "equirect_to_perspective",
    "look_rotation",
    "lonlat_to_direction",
    "perspective_directions",
    "perspective_to_equirect",
    "pixel_to_direction",
    "sample_equirect",
]
