"""Simplification helpers: meshoptimizer path (two halves in parallel, vertices kept) and quadric path."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.mesh.simplify import simplify


def _wavy_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    x -= (n - 1) / 2
    v = np.stack([x, 0.3 * np.sin(x * 0.2) * np.cos(y * 0.15), y], -1).reshape(-1, 3)
    i = np.arange(n * n).reshape(n, n)
    f = np.concatenate(
        [
            np.stack([i[:-1, :-1], i[1:, :-1], i[:-1, 1:]], -1).reshape(-1, 3),
            np.stack([i[:-1, 1:], i[1:, :-1], i[1:, 1:]], -1).reshape(-1, 3),
        ]
    )
    return v, f


def _border_vertices(f: np.ndarray) -> np.ndarray:
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    u, c = np.unique(e, axis=0, return_counts=True)
    return np.unique(u[c == 1])


def test_meshopt_halves_join_without_a_crack():
    v, f = _wavy_grid(330)  # > 200k faces: simplified as two halves
    assert len(f) > 200_000
    v2, f2 = simplify(v, f, 20_000, preserve_border=True, method="meshopt")
    assert 15_000 < len(f2) <= 20_000
    # Every kept vertex is an input vertex.
    key = {tuple(p) for p in np.round(v, 6)}
    assert all(tuple(p) in key for p in np.round(v2, 6))
    # Open borders only on the outer square: the x = 0 cut between the halves is closed.
    b = v2[_border_vertices(f2)]
    on_outer = (np.abs(np.abs(b[:, 0]) - 164.5) < 1e-9) | (b[:, 2] < 1e-9) | (b[:, 2] > 329 - 1e-9)
    assert on_outer.all()


def test_meshopt_lock_keeps_vertices():
    v, f = _wavy_grid(60)
    lock = np.zeros(len(v), bool)
    lock[::7] = True
    v2, f2 = simplify(v, f, 500, method="meshopt", lock=lock)
    kept = {tuple(p) for p in np.round(v2, 6)}
    assert all(tuple(p) in kept for p in np.round(v[lock], 6))


def test_quadric_path_and_bad_method():
    v, f = _wavy_grid(40)
    v2, f2 = simplify(v, f, 800, preserve_border=False)
    assert len(f2) <= 800
    with pytest.raises(InputError):
        simplify(v, f, 800, method="nope")
