"""Input checks used at the public boundary (never ``assert``: ``python -O`` strips it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError, ShapeError


def check_shape(x: np.ndarray, expected: Sequence[int | str], name: str, hint: str = "") -> dict[str, int]:
    """Check ``x.shape`` against ``expected`` and return the sizes bound to its letters.

    Args:
        x: any array.
        expected: one entry per axis: an int (exact size) or a letter (any size, but the same
            letter must have the same size everywhere it appears).
        name: what the array is, for the message.

    Returns:
        letter -> size, e.g. ``{"H": 512, "W": 1024}``.

    Example:
        >>> check_shape(np.zeros((4, 8, 3)), ["H", "W", 3], "image")
        {'H': 4, 'W': 8}
    """
    shape = tuple(np.shape(x))
    if len(shape) != len(expected):
        raise ShapeError(name, shape, expected, hint)
    bound: dict[str, int] = {}
    for size, want in zip(shape, expected):
        if isinstance(want, str):
            if bound.setdefault(want, size) != size:
                raise ShapeError(name, shape, expected, hint)
        elif size != want:
            raise ShapeError(name, shape, expected, hint)
    return bound


def check_finite(x: np.ndarray, name: str, hint: str = "") -> None:
    """Raise :class:`InputError` if ``x`` holds a NaN or an infinity."""
    bad = ~np.isfinite(x)
    if bad.any():
        n = int(bad.sum())
        raise InputError(f"{name} holds {n} non-finite value(s)" + (f"; {hint}" if hint else ""))


def frozen(*arrays: np.ndarray | None) -> None:
    """Make arrays read-only so no caller can mutate a shared value in place."""
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


def check_rgbd(panorama, depth) -> None:
    """Raise InputError unless ``depth`` has exactly the panorama's size (an RGB-D pair).

    Args:
        panorama: a :class:`worldgen.types.Panorama`.
        depth: a :class:`worldgen.types.DepthMap`.
    """
    if (panorama.height, panorama.width) != depth.shape:
        raise InputError(
            f"panorama is {panorama.width}x{panorama.height} but depth is {depth.shape[1]}x{depth.shape[0]}; "
            "resize the depth map to the panorama's size"
        )
