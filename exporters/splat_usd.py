"""USD ``ParticleField3DGaussianSplat`` (OpenUSD 26.03+ UsdVol): splats for Omniverse / Isaac Sim.

One prim ``/World/splats`` (kind component) under the ``/World`` assembly; stage Y up,
metres, world frame unchanged. Attributes use the schema's activated conventions:
``positions`` (point3f), ``orientations`` (quatf, real part first), ``scales`` (linear standard
deviation, metres), ``opacities`` (linear [0, 1]), ``radiance:sphericalHarmonicsDegree`` and
``radiance:sphericalHarmonicsCoefficients`` ((degree + 1)^2 raw RGB coefficients per splat, DC
first, m = -l..l; primvar interpolation ``vertex`` with that elementSize, as NVIDIA's VG.035
rule requires), plus ``extent`` and a ``displayColor`` fallback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from worldgen.types import GaussianCloud

from ._splat_common import prepare
from .settings import ExportSettings
from .usd import ROOT, _pxr, new_stage, package_usdz


def _author(stage, cloud: GaussianCloud) -> None:
    Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt = _pxr()
    from pxr import UsdVol

    s = prepare(cloud, "world")
    pf = UsdVol.ParticleField3DGaussianSplat.Define(stage, f"{ROOT}/splats")
    Usd.ModelAPI(pf.GetPrim()).SetKind(Kind.Tokens.component)
    pf.CreatePositionsAttr(Vt.Vec3fArray.FromNumpy(s.means))
    # GfQuatf's memory layout is (i, j, k, real): FromNumpy wants (x, y, z, w) rows.
    xyzw = np.concatenate([s.quats[:, 1:], s.quats[:, :1]], axis=1)
    pf.CreateOrientationsAttr(Vt.QuatfArray.FromNumpy(np.ascontiguousarray(xyzw, np.float32)))
    pf.CreateScalesAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(s.scales, np.float32)))
    pf.CreateOpacitiesAttr(Vt.FloatArray.FromNumpy(np.ascontiguousarray(s.opacities, np.float32)))
    pf.CreateRadianceSphericalHarmonicsDegreeAttr(s.sh_degree)
    k = s.sh.shape[1]
    coeffs = pf.CreateRadianceSphericalHarmonicsCoefficientsAttr(
        Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(s.sh.reshape(-1, 3), np.float32))
    )
    pv = UsdGeom.Primvar(coeffs)
    pv.SetInterpolation(UsdGeom.Tokens.vertex)
    pv.SetElementSize(k)
    pf.CreateDisplayColorPrimvar(UsdGeom.Tokens.vertex).Set(Vt.Vec3fArray.FromNumpy(s.colors))
    if len(s):
        # 3 sigma covers what a renderer draws of each splat.
        reach = 3.0 * s.scales.max(axis=1, keepdims=True)
        lo, hi = (s.means - reach).min(0), (s.means + reach).max(0)
    else:
        lo = hi = np.zeros(3, np.float32)
    pf.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))


def _layer(cloud: GaussianCloud, name: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="wg-usd-") as tmp:
        path = str(Path(tmp) / name)
        stage = new_stage(path)
        _author(stage, cloud)
        stage.GetRootLayer().Save()
        return Path(path).read_bytes()


def export_splat_usda(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """Text ``.usda`` with one ParticleField3DGaussianSplat (large: prefer usdc/usdz)."""
    return _layer(cloud, "splats.usda")


def export_splat_usdc(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """Binary ``.usdc`` with one ParticleField3DGaussianSplat."""
    return _layer(cloud, "splats.usdc")


def export_splat_usdz(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """``.usdz`` package (UsdUtils, aligned) of :func:`export_splat_usdc`."""
    return package_usdz({"splats.usdc": export_splat_usdc(cloud, cfg)}, "splats.usdc")


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "splat-usdz",
        "splats",
        "splats.usdz",
        export_splat_usdz,
        "USD ParticleField3DGaussianSplat (usdz): Omniverse Kit 110+, Isaac Sim 6+",
    )
)
register_format(
    Format("splat-usdc", "splats", "splats.usdc", export_splat_usdc, "USD ParticleField3DGaussianSplat (binary usdc)")
)
register_format(
    Format(
        "splat-usda", "splats", "splats.usda", export_splat_usda, "USD ParticleField3DGaussianSplat (text usda, large)"
    )
)
