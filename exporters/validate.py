"""Run the real validators on exported assets.

Validators (each reports errors and warnings; see docs/engines.md for installing them):
    - GLB: the Khronos glTF validator (npm ``gltf-validator``) through ``tools/validate_gltf.mjs``
      under node; splat GLBs additionally get worldgen's KHR_gaussian_splatting checks, and
      only the validator's known false ``MESH_PRIMITIVE_INVALID_ATTRIBUTE`` (it does not know
      the extension's attribute names, KhronosGroup/glTF-Validator#252) is ignored for them.
    - USD (usda/usdc/usdz): ``pxr.UsdValidation`` (every registered validator), then NVIDIA's
      ``usd-validation-nvidia`` default rules, plus its gaussian-splat rule VG.035 on stages
      holding ParticleField3DGaussianSplat prims.
    - Splat PLY / SPZ / .splat: read back by PlayCanvas ``splat-transform`` (an independent
      reader) and checked for count and finite values; PLYs also for the 62-property INRIA layout.

Validators that are not installed are reported as "skipped" rows with the reason, never as passes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worldgen.errors import InputError

log = logging.getLogger(__name__)

KNOWN_FALSE_SPLAT_CODE = "MESH_PRIMITIVE_INVALID_ATTRIBUTE"
ADVISORY_NVIDIA_RULES = frozenset({"UsdAsciiPerformanceChecker"})
"""NVIDIA rules whose failures are advice, not defects: counted as warnings. The ASCII checker
fails every text .usda with large arrays; that is the format choice (use usdc/usdz for size)."""
ASSET_SUFFIXES = (".glb", ".gltf", ".usd", ".usda", ".usdc", ".usdz", ".ply", ".spz", ".splat")


@dataclass
class Finding:
    """One validator's verdict on one file.

    Args:
        file: the asset's path.
        validator: which tool ("gltf-validator", "UsdValidation", ...).
        errors: number of errors (any error fails ``worldgen validate``).
        warnings: number of warnings.
        messages: the errors and warnings, one line each (at most 50 kept).
        counts: what the tool counted (vertices, triangles, splats...).
        skipped: why the validator did not run, or "" when it ran.
    """

    file: str
    validator: str
    errors: int = 0
    warnings: int = 0
    messages: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.skipped


# ---------------------------------------------------------------------------------------------
# Tool discovery
# ---------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The source checkout holding tools/ and node_modules/ (exporters/ sits at its top)."""
    env = os.environ.get("WORLDGEN_ROOT")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def node_tools_missing() -> str | None:
    """None when node + gltf-validator + splat-transform are usable, else the reason and fix."""
    root = repo_root()
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (root / "tools" / "validate_gltf.mjs").is_file():
        return f"tools/validate_gltf.mjs is missing under {root} (run from a source checkout)"
    for pkg in ("gltf-validator", "@playcanvas/splat-transform"):
        if not (root / "node_modules" / pkg / "package.json").is_file():
            return f"npm package {pkg} is missing (run `npm ci` in {root})"
    return None


def nvidia_missing() -> str | None:
    """None when usd-validation-nvidia imports, else the reason and fix."""
    import importlib.util

    if importlib.util.find_spec("usd_validation_nvidia") is None:
        return "usd-validation-nvidia is not installed (pip install usd-validation-nvidia==1.22.0, without the [usd] extra)"
    return None


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=repo_root())


# ---------------------------------------------------------------------------------------------
# glTF
# ---------------------------------------------------------------------------------------------


def _glb_json(path: Path) -> dict:
    import struct

    data = path.read_bytes()
    if path.suffix.lower() == ".gltf":
        return json.loads(data)
    if len(data) < 20 or data[:4] != b"glTF":
        raise InputError(f"{path.name} is not a GLB file (bad magic)")
    (length,) = struct.unpack_from("<I", data, 12)
    return json.loads(data[20 : 20 + length])


def is_splat_glb(path: str | os.PathLike) -> bool:
    """True when the GLB uses KHR_gaussian_splatting."""
    return "KHR_gaussian_splatting" in _glb_json(Path(path)).get("extensionsUsed", [])


def validate_gltf(path: str | os.PathLike) -> Finding:
    """Khronos glTF validator on one GLB (splat GLBs also get :func:`check_splat_glb`)."""
    path = Path(path)
    why = node_tools_missing()
    if why:
        return Finding(str(path), "gltf-validator", skipped=why)
    splat = is_splat_glb(path)
    cmd = ["node", str(repo_root() / "tools" / "validate_gltf.mjs")]
    if splat:
        cmd += ["--ignore", KNOWN_FALSE_SPLAT_CODE]
    proc = _run(cmd + [str(path.resolve())])
    if proc.returncode not in (0, 1):
        return Finding(str(path), "gltf-validator", errors=1, messages=[proc.stderr.strip()[-500:]])
    rep = json.loads(proc.stdout)[0]
    msgs = [f"{m['code']} at {m.get('pointer', '')}: {m['message']}" for m in rep["messages"] if m["severity"] <= 1][
        :50
    ]
    info = rep.get("info", {})
    counts = {k: info[k] for k in ("totalVertexCount", "totalTriangleCount", "drawCallCount") if k in info}
    f = Finding(str(path), "gltf-validator", rep["numErrors"], rep["numWarnings"], msgs, counts)
    if splat:
        extra = check_splat_glb(path)
        f.errors += len(extra)
        f.messages += extra
    return f


def check_splat_glb(path: str | os.PathLike) -> list[str]:
    """KHR_gaussian_splatting rules the Khronos validator does not know; returns problems found."""
    from pygltflib import GLTF2

    g = GLTF2().load(str(path))
    blob = g.binary_blob()
    problems: list[str] = []
    if "KHR_gaussian_splatting" in (g.extensionsRequired or []):
        problems.append("KHR_gaussian_splatting must not be in extensionsRequired")

    def read(idx: int) -> np.ndarray:
        acc = g.accessors[idx]
        view = g.bufferViews[acc.bufferView]
        comps = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc.type]
        dt = {5126: "<f4", 5121: "u1", 5123: "<u2"}[acc.componentType]
        a = np.frombuffer(
            blob, dtype=dt, count=acc.count * comps, offset=(view.byteOffset or 0) + (acc.byteOffset or 0)
        )
        return a.reshape(acc.count, comps)

    for mesh in g.meshes:
        for prim in mesh.primitives:
            ext = (prim.extensions or {}).get("KHR_gaussian_splatting")
            if ext is None:
                continue
            if ext.get("kernel") != "ellipse" or ext.get("colorSpace") not in (
                "srgb_rec709_display",
                "lin_rec709_display",
            ):
                problems.append(f"bad extension object {ext}")
            if prim.mode != 0:
                problems.append(f"splat primitive mode is {prim.mode}, must be 0 (POINTS)")
            attrs = {k: v for k, v in prim.attributes.__dict__.items() if v is not None}
            attrs.update({k: v for k, v in (getattr(prim.attributes, "_extra", None) or {}).items()})
            need = [
                "POSITION",
                "KHR_gaussian_splatting:ROTATION",
                "KHR_gaussian_splatting:SCALE",
                "KHR_gaussian_splatting:OPACITY",
                "KHR_gaussian_splatting:SH_DEGREE_0_COEF_0",
            ]
            missing = [a for a in need if a not in attrs]
            if missing:
                problems.append(f"missing attributes {missing}")
                continue
            for name, idx in attrs.items():
                if g.accessors[idx].componentType == 5126 and not np.isfinite(read(idx)).all():
                    problems.append(f"{name} holds NaN or infinite values")
            q = read(attrs["KHR_gaussian_splatting:ROTATION"]).astype(np.float64)
            if np.abs(np.linalg.norm(q, axis=1) - 1).max(initial=0) > 1e-3:
                problems.append("ROTATION quaternions are not unit length")
            if (read(attrs["KHR_gaussian_splatting:SCALE"]) < 0).any():
                problems.append("SCALE has negative values (must be linear, not log)")
            op = read(attrs["KHR_gaussian_splatting:OPACITY"])
            if (op < 0).any() or (op > 1).any():
                problems.append("OPACITY outside [0, 1] (must be linear, not a logit)")
    return problems


# ---------------------------------------------------------------------------------------------
# USD
# ---------------------------------------------------------------------------------------------


def _has_particle_fields(stage) -> bool:
    return any(p.GetTypeName() == "ParticleField3DGaussianSplat" for p in stage.Traverse())


def validate_usd(path: str | os.PathLike) -> list[Finding]:
    """pxr.UsdValidation, then NVIDIA's rules (with VG.035 on splat stages)."""
    from pxr import Usd, UsdGeom, UsdValidation

    path = Path(path)
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        return [Finding(str(path), "UsdValidation", errors=1, messages=["the stage does not open"])]
    ctx = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    errs = ctx.Validate(stage)
    n_err = sum(1 for e in errs if e.GetType() == UsdValidation.ValidationErrorType.Error)
    n_warn = len(errs) - n_err
    counts = {
        "meshes": sum(1 for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)),
        "upAxis": str(UsdGeom.GetStageUpAxis(stage)),
        "metersPerUnit": UsdGeom.GetStageMetersPerUnit(stage),
    }
    splats = _has_particle_fields(stage)
    if splats:
        from pxr import UsdVol

        counts["splats"] = sum(
            len(UsdVol.ParticleField3DGaussianSplat(p).GetPositionsAttr().Get() or [])
            for p in stage.Traverse()
            if p.GetTypeName() == "ParticleField3DGaussianSplat"
        )
    out = [Finding(str(path), "UsdValidation", n_err, n_warn, [e.GetErrorAsString()[:300] for e in errs][:50], counts)]
    why = nvidia_missing()
    if why:
        out.append(Finding(str(path), "usd-validation-nvidia", skipped=why))
        return out
    runs = [("usd-validation-nvidia", [])]
    if splats:
        runs.append(("nvidia VG.035 (splats)", ["--requirement", "com.nvidia.usd.VG.035"]))
    for name, extra in runs:
        with tempfile.TemporaryDirectory(prefix="wg-nv-") as tmp:
            rep_path = Path(tmp) / "report.json"
            proc = _run(
                [
                    sys.executable,
                    "-c",
                    "import sys, usd_validation_nvidia as m; sys.exit(m.cli_main())",
                    *extra,
                    "--json-output",
                    str(rep_path),
                    str(path.resolve()),
                ]
            )
            if not rep_path.is_file():
                out.append(Finding(str(path), name, errors=1, messages=[(proc.stderr or proc.stdout)[-500:]]))
                continue
            rep = json.loads(rep_path.read_text())
        issues = [i for r in rep.get("rules", []) for i in r.get("issues", [])]
        advisory = [i for i in issues if i.get("rule", {}).get("name") in ADVISORY_NVIDIA_RULES]
        bad = [i for i in issues if i.get("severity") in ("FAILURE", "ERROR") and i not in advisory]
        warn = [i for i in issues if i.get("severity") == "WARNING" or i in advisory]
        msgs = [f"{i['rule']['name']}: {i['message']}"[:300] for i in bad + warn][:50]
        out.append(Finding(str(path), name, len(bad), len(warn), msgs))
    return out


# ---------------------------------------------------------------------------------------------
# Splat files
# ---------------------------------------------------------------------------------------------


def check_ply_layout(path: str | os.PathLike) -> list[str]:
    """INRIA layout problems of a splat PLY (62 float properties, finite values, valid quats)."""
    from plyfile import PlyData

    from .splat_ply import PROPERTY_NAMES

    ply = PlyData.read(str(path))
    if ply.text or ply.byte_order != "<":
        return ["not binary little-endian"]
    v = ply["vertex"].data
    problems = []
    if tuple(v.dtype.names) != PROPERTY_NAMES:
        problems.append(f"properties are not the 62 INRIA names in order (got {len(v.dtype.names)})")
    if any(v.dtype[n] != np.dtype("<f4") for n in v.dtype.names):
        problems.append("not all properties are float32")
    arr = np.stack([v[n] for n in v.dtype.names], axis=1) if len(v) else np.zeros((0, 1))
    if not np.isfinite(arr).all():
        problems.append(f"{int((~np.isfinite(arr)).sum())} NaN/infinite values")
    if "rot_0" in v.dtype.names and len(v):
        q = np.stack([v[f"rot_{i}"] for i in range(4)], axis=1)
        if (np.linalg.norm(q, axis=1) < 1e-6).any():
            problems.append("zero-length quaternions")
    return problems


def read_with_splat_transform(path: str | os.PathLike) -> np.ndarray:
    """Convert any splat file to PLY with splat-transform and return its vertex records."""
    from plyfile import PlyData

    with tempfile.TemporaryDirectory(prefix="wg-st-") as tmp:
        out = Path(tmp) / "out.ply"
        proc = _run(
            [
                str(repo_root() / "node_modules" / ".bin" / "splat-transform"),
                "-q",
                "-w",
                str(Path(path).resolve()),
                str(out),
            ]
        )
        if proc.returncode != 0 or not out.is_file():
            raise InputError(
                f"splat-transform could not read {Path(path).name}: {(proc.stderr or proc.stdout).strip()[-300:]}"
            )
        return PlyData.read(str(out))["vertex"].data


def validate_splat_file(path: str | os.PathLike) -> Finding:
    """Read a .ply/.spz/.splat back with splat-transform; check count, finiteness, ranges."""
    path = Path(path)
    problems = check_ply_layout(path) if path.suffix.lower() == ".ply" else []
    why = node_tools_missing()
    if why:
        return Finding(str(path), "splat-transform", len(problems), 0, problems, skipped=why)
    try:
        v = read_with_splat_transform(path)
    except InputError as e:
        return Finding(str(path), "splat-transform", len(problems) + 1, 0, problems + [str(e)])
    arr = np.stack([v[n] for n in v.dtype.names], axis=1) if len(v) else np.zeros((0, 1))
    if not np.isfinite(arr).all():
        problems.append("splat-transform read NaN/infinite values")
    counts = {"splats": int(len(v))}
    if len(v):
        counts["mean opacity"] = round(float(np.mean(1 / (1 + np.exp(-v["opacity"].astype(np.float64))))), 3)
    return Finding(str(path), "splat-transform", len(problems), 0, problems, counts)


# ---------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------


def validate_file(path: str | os.PathLike) -> list[Finding]:
    """Every applicable validator on one asset."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".glb", ".gltf"):
            return [validate_gltf(p)]
        if suffix in (".usd", ".usda", ".usdc", ".usdz"):
            return validate_usd(p)
        if suffix in (".ply", ".spz", ".splat"):
            return [validate_splat_file(p)]
    except (InputError, ValueError, OSError, json.JSONDecodeError) as e:
        return [Finding(str(p), "reader", errors=1, messages=[f"{type(e).__name__}: {e}"])]
    raise InputError(f"{p.name}: no validator for {suffix!r} files; assets are {', '.join(ASSET_SUFFIXES)}")


def find_assets(folder: str | os.PathLike) -> list[Path]:
    """Asset files directly in ``folder`` or in its subfolders, sorted (texture folders skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is not a folder; give the run folder that holds the exported assets")
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in ASSET_SUFFIXES and not p.name.startswith(".")
    )


def validate_folder(folder: str | os.PathLike) -> list[Finding]:
    """Run :func:`validate_file` on every asset in ``folder``; InputError if there is none."""
    assets = find_assets(folder)
    if not assets:
        raise InputError(f"no assets ({', '.join(ASSET_SUFFIXES)}) in {str(folder)!r}; run `worldgen export` first")
    out: list[Finding] = []
    for a in assets:
        log.info("validating %s", a)
        out += validate_file(a)
    return out
