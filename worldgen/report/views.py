"""Where the previews look from: the capture point, nearby viewpoints and a small fly-through loop.

Positions are in the world frame of docs/conventions.md (glTF: +Y up, -Z forward, metres) with
the capture camera at the origin, so every eye stays at the capture height (standing height).
Yaw 0 looks along -Z, +90 along +X; pitch is positive upwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry.equirect import look_rotation
from ..types import Camera


@dataclass(frozen=True)
class Viewpoint:
    """One preview pose.

    Args:
        label: shown under the tile, e.g. "0.5 m right".
        distance_m: distance from the capture point, metres (0 = the capture point).
        position: eye position, metres. (3,)
        yaw_deg, pitch_deg: viewing direction, degrees.
    """

    label: str
    distance_m: float
    position: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float


def _offset(distance: float, azimuth_deg: float) -> tuple[float, float, float]:
    """A horizontal step of ``distance`` metres towards ``azimuth_deg`` (yaw convention)."""
    a = math.radians(azimuth_deg)
    return (distance * math.sin(a), 0.0, -distance * math.cos(a))


VIEWPOINTS: tuple[Viewpoint, ...] = (
    Viewpoint("capture point", 0.0, (0.0, 0.0, 0.0), 0.0, -5.0),
    Viewpoint("0.5 m right, looking ahead", 0.5, _offset(0.5, 90.0), 0.0, -5.0),
    Viewpoint("0.5 m back-left, looking left", 0.5, _offset(0.5, 225.0), 270.0, -5.0),
    Viewpoint("1 m ahead, looking right", 1.0, _offset(1.0, 0.0), 90.0, -5.0),
    Viewpoint("1 m left, looking back", 1.0, _offset(1.0, 270.0), 180.0, -5.0),
)
"""The capture point and four viewpoints 0.5-1 m away; the moves uncover what the capture point
could not see (behind objects), which is where meshes and splats show their holes."""


def camera_at(position, yaw_deg: float, pitch_deg: float, width: int, height: int, fov_x_deg: float) -> Camera:
    """Pinhole camera at ``position`` looking at (yaw, pitch), horizon level.

    Args:
        position: eye, metres. (3,)
        width, height: image size, pixels.
        fov_x_deg: horizontal field of view, degrees.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    fwd = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), -math.cos(pitch) * math.cos(yaw)])
    pose = np.eye(4)
    pose[:3, :3] = look_rotation(fwd)
    pose[:3, 3] = np.asarray(position, np.float64)
    return Camera.perspective(width, height, fov_x_deg, pose)


def loop_cameras(frames: int, radius_m: float, width: int, height: int, fov_x_deg: float) -> list[Camera]:
    """A closed loop around the capture point: the eye circles at ``radius_m`` while turning once
    around, looking outwards and a little ahead, so every direction of the world is seen.

    Returns:
        ``frames`` cameras; frame k is at angle 360° k / frames (the loop closes on frame 0).
    """
    cams = []
    for k in range(frames):
        a = 360.0 * k / frames
        cams.append(camera_at(_offset(radius_m, a), a + 30.0, -5.0, width, height, fov_x_deg))
    return cams
