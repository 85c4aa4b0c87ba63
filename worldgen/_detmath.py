"""Elementary functions that give the same bits on every x86-64 CPU (and any IEEE-754 machine).

Why: numpy's ``log``, ``exp``, ``arctan2``, ``arccos`` (float64) switch to AVX-512 kernels on
CPUs that have them, its float32 ``sin``/``exp``/``log`` to AVX2 kernels, and the glibc functions
behind the rest (``sin``, ``cos``) pick FMA variants at load time. Each variant is accurate to an
ulp or so, but not the same ulp: on an AMD EPYC with AVX-512 the sheet mesh of a test room had
191 vertex coordinates and 112 face corners different from the same code with numpy's
dispatch restricted (``NPY_DISABLE_CPU_FEATURES``), and meshoptimizer then collapsed a
different set of edges (docs/conventions.md, "Determinism").

These versions use only IEEE-754 basic operations (+, -, *, /, sqrt, each correctly rounded in
every numpy SIMD path, never fused: every numpy ufunc call rounds) and exact ones (frexp, ldexp,
rint, comparisons), so their results depend on nothing but the input. They are within a few
ulp of the correctly rounded value (tests/test_detmath.py) and cost ~20 vectorised array
operations each.

Ranges: ``sin``/``cos`` take |x| <= 1e5 radians (three-part pi/2 reduction; angles here are
within a few turns), ``log`` takes x > 0 (0, inf, NaN and negatives give numpy's answers, which
are exact), ``exp`` any float64.
"""

from __future__ import annotations

import math

import numpy as np

# pi/2 split into three parts whose products with an integer k < 2**20 are exact (Cody-Waite).
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050650619224932e-11
_PIO2_3 = 2.02226624879595063154e-21
_LN2_HI = 6.93147180369123816490e-01  # ln 2, upper 32 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF = math.sqrt(0.5)


def _horner(x: np.ndarray, coeffs: list[float]) -> np.ndarray:
    """sum coeffs[i] * x**i, highest term first (one rounding per operation, no FMA)."""
    p = np.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = p * x + c
    return p


# Taylor coefficients: odd series of atanh (log), exp, sin, cos, atan.
_ATANH = [1.0 / (2 * k + 1) for k in range(12)]
_EXP = [1.0 / math.factorial(k) for k in range(20)]
_SIN = [(-1) ** k / math.factorial(2 * k + 1) for k in range(11)]
_COS = [(-1) ** k / math.factorial(2 * k) for k in range(11)]
_ATAN = [(-1) ** k / (2 * k + 1) for k in range(24)]


def log(x: np.ndarray) -> np.ndarray:
    """Natural logarithm, float64. [...]"""
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x) & (x > 0)
    xs = np.where(ok, x, 1.0)
    m, e = np.frexp(xs)  # xs = m * 2**e, m in [0.5, 1)
    small = m < _SQRT_HALF
    m = np.where(small, 2.0 * m, m)  # m in [0.707, 1.414)
    e = (e - small).astype(np.float64)
    z = (m - 1.0) / (m + 1.0)  # log m = 2 atanh z, |z| <= 0.172
    lm = 2.0 * z * _horner(z * z, _ATANH)
    out = e * _LN2_HI + (e * _LN2_LO + lm)
    if ok.all():
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, out, np.log(np.where(ok, 1.0, x)))


def exp(x: np.ndarray) -> np.ndarray:
    """e**x, float64. [...]"""
    x = np.asarray(x, np.float64)
    xs = np.clip(np.where(np.isnan(x), 0.0, x), -746.0, 710.0)
    k = np.rint(xs / math.log(2))
    r = (xs - k * _LN2_HI) - k * _LN2_LO  # |r| <= 0.347
    with np.errstate(over="ignore"):
        out = np.ldexp(_horner(r, _EXP), k.astype(np.int64))
        out = np.where(x > 709.8, np.inf, np.where(x < -745.2, 0.0, out))
    return np.where(np.isnan(x), np.nan, out)


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.rint(x / (math.pi / 2))
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3  # |r| <= pi/4
    return r, k.astype(np.int64) & 3


def _sincos_q(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r2 = r * r
    return r * _horner(r2, _SIN), _horner(r2, _COS)


def sin(x: np.ndarray) -> np.ndarray:
    """Sine of radians, float64, |x| <= 1e5. [...]"""
    r, q = _reduce(np.asarray(x, np.float64))
    s, c = _sincos_q(r)
    return np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)


def cos(x: np.ndarray) -> np.ndarray:
    """Cosine of radians, float64, |x| <= 1e5. [...]"""
    r, q = _reduce(np.asarray(x, np.float64))
    s, c = _sincos_q(r)
    return np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)


def arctan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Angle of (x, y), radians in [-pi, pi], float64, with numpy's signs at zeros. [...]"""
    y, x = np.broadcast_arrays(np.asarray(y, np.float64), np.asarray(x, np.float64))
    ay, ax = np.abs(y), np.abs(x)
    swap = ay > ax
    num, den = np.where(swap, ax, ay), np.where(swap, ay, ax)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)  # t in [0, 1]
    # Two half-angle steps, atan t = 2 atan(t / (1 + sqrt(1 + t^2))): t <= tan(pi/16) = 0.199.
    for _ in range(2):
        t = t / (1.0 + np.sqrt(1.0 + t * t))
    a = 4.0 * t * _horner(t * t, _ATAN)  # atan of the first-octant ratio
    a = np.where(swap, math.pi / 2 - a, a)
    a = np.where(np.signbit(x), math.pi - a, a)
    out = np.where(np.signbit(y), -a, a)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    return np.where(bad, np.arctan2(y, x), out) if bad.any() else out


def lonlat_to_direction(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """:func:`worldgen.geometry.equirect.lonlat_to_direction` with these functions. [..., 3] float64"""
    lon, lat = np.broadcast_arrays(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    c = cos(lat)
    return np.stack([c * sin(lon), sin(lat), -c * cos(lon)], axis=-1)


def pixel_to_direction(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """:func:`worldgen.geometry.equirect.pixel_to_direction` with these functions. [..., 3] float64"""
    lon = 2 * math.pi * np.asarray(x, dtype=np.float64) / width - math.pi
    lat = math.pi / 2 - math.pi * np.asarray(y, dtype=np.float64) / height
    return lonlat_to_direction(lon, lat)
