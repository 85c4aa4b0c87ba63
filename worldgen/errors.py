"""Every error worldgen raises on purpose derives from :class:`WorldgenError`.

The CLI turns :class:`InputError` (a user mistake: wrong file, wrong shape, NaN depth, unknown
backend...) into a one-line message and exit code 2, any other :class:`WorldgenError` into a
one-line message and exit code 1. Messages name the problem *and* the fix.
"""

from __future__ import annotations

from collections.abc import Sequence


class WorldgenError(Exception):
    """Root of worldgen's errors."""


class InputError(WorldgenError, ValueError):
    """Input the user can fix: a file, a shape, a value, an option."""


class ShapeError(InputError):
    """An array has the wrong shape.

    Args:
        name: what the array is ("depth", "panorama image"...).
        actual: the shape received.
        expected: the expected shape, with letters for free sizes, e.g. ``("H", "W", 3)``.
    """

    def __init__(self, name: str, actual: Sequence[int], expected: Sequence[int | str], hint: str = ""):
        self.actual = tuple(actual)
        self.expected = tuple(expected)
        exp = "[" + ", ".join(str(e) for e in expected) + "]"
        msg = f"{name} has shape {list(self.actual)}, expected {exp}"
        super().__init__(msg + (f"; {hint}" if hint else ""))


class BackendUnavailableError(WorldgenError):
    """A registered backend cannot run on this machine (missing package, weights or GPU)."""


class MissingDependencyError(BackendUnavailableError, ImportError):
    """An optional package is missing; the message names the pip extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        self.package = package
        self.extra = extra
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"{package} is not installed{what}; install it with: pip install 'worldgen[{extra}]'")


class OutputError(InputError):
    """The output folder or an output path cannot be used (unwritable, escapes the folder...)."""
