"""Typed artifacts: how each value passed between stages is stored in the output folder.

The runner always hands later stages the value *decoded from its file bytes*, so a stage sees
the same numbers whether its inputs were just computed or reused from an earlier run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .io import arrays_from_bytes, arrays_to_bytes, encode_png
from .types import DepthMap, GaussianCloud, Mesh, MeshScene, Panorama, SemanticLayers


@dataclass(frozen=True)
class Artifact:
    """How one artifact key is written and read.

    Args:
        key: the name stages use ("panorama", "depth"...).
        filename: file in the output folder.
        encode: value -> bytes (deterministic).
        decode: bytes -> value.
        type: the Python type of the value.
    """

    key: str
    filename: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    type: type


def _enc_panorama(p: Panorama) -> bytes:
    return encode_png(p.to_uint8())


def _dec_panorama(b: bytes) -> Panorama:
    from PIL import Image

    with Image.open(io.BytesIO(b)) as im:
        return Panorama.from_uint8(np.asarray(im.convert("RGB")))


def _enc_depth(d: DepthMap) -> bytes:
    return arrays_to_bytes({"depth": d.depth, "sky": d.sky})


def _dec_depth(b: bytes) -> DepthMap:
    a, _ = arrays_from_bytes(b)
    return DepthMap(a["depth"], a["sky"])


def _enc_semantics(s: SemanticLayers) -> bytes:
    return arrays_to_bytes({"ids": s.ids}, {"classes": list(s.classes)})


def _dec_semantics(b: bytes) -> SemanticLayers:
    a, meta = arrays_from_bytes(b)
    return SemanticLayers(a["ids"], tuple(meta["classes"]))


def _enc_gaussians(g: GaussianCloud) -> bytes:
    return arrays_to_bytes(
        {"means": g.means, "quats": g.quats, "log_scales": g.log_scales, "opacity_logits": g.opacity_logits, "sh": g.sh}
    )


def _dec_gaussians(b: bytes) -> GaussianCloud:
    a, _ = arrays_from_bytes(b)
    return GaussianCloud(a["means"], a["quats"], a["log_scales"], a["opacity_logits"], a["sh"])


def is_run_dependent(key: str) -> bool:
    """Report keys that vary between identical runs (wall-clock timings: ``seconds``,
    ``seconds_total``...), at any depth of a report: kept out of artifacts."""
    return key == "seconds" or key.startswith("seconds_")


def without_run_values(report: Any) -> Any:
    """``report`` with every run-dependent key removed, nested dicts included."""
    if isinstance(report, dict):
        return {k: without_run_values(v) for k, v in report.items() if not is_run_dependent(str(k))}
    if isinstance(report, (list, tuple)):
        return [without_run_values(v) for v in report]
    return report


_MESH_FIELDS = ("vertices", "faces", "normals", "uvs", "texture", "vertex_colors")


def _enc_mesh(s: MeshScene) -> bytes:
    arrays = {}
    for name, m in s.parts.items():
        for f in _MESH_FIELDS:
            v = getattr(m, f)
            if v is not None:
                arrays[f"{name}/{f}"] = v
    # Timings differ on every run: a content-addressed artifact must not hold them (three
    # identical runs gave three mesh.npz hashes). The manifest's stage entry keeps them.
    # Nested reports too: the hidden-surface layers report their own timings.
    report = without_run_values(s.report)
    return arrays_to_bytes(arrays, {"parts": list(s.parts), "report": report})


def _dec_mesh(b: bytes) -> MeshScene:
    a, meta = arrays_from_bytes(b)
    parts = {name: Mesh(**{f: a.get(f"{name}/{f}") for f in _MESH_FIELDS}) for name in meta["parts"]}
    return MeshScene(parts, meta.get("report", {}))


def _enc_json(d: dict) -> bytes:
    return (json.dumps(d, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _dec_json(b: bytes) -> dict:
    return json.loads(b)


ARTIFACTS: dict[str, Artifact] = {
    a.key: a
    for a in (
        Artifact("panorama", "panorama.png", _enc_panorama, _dec_panorama, Panorama),
        Artifact("semantics", "semantics.npz", _enc_semantics, _dec_semantics, SemanticLayers),
        Artifact("scene_spec", "scene_spec.json", _enc_json, _dec_json, dict),
        # Depth delivered with the panorama (a user's --depth file, or a synthesizer's exact depth).
        Artifact("given_depth", "given_depth.npz", _enc_depth, _dec_depth, DepthMap),
        Artifact("depth", "depth.npz", _enc_depth, _dec_depth, DepthMap),
        Artifact("gaussians", "gaussians.npz", _enc_gaussians, _dec_gaussians, GaussianCloud),
        Artifact("mesh", "mesh.npz", _enc_mesh, _dec_mesh, MeshScene),
    )
}


def encode_artifact(key: str, value: Any) -> bytes:
    art = ARTIFACTS.get(key)
    if art is None:
        raise InputError(f"unknown artifact {key!r}; known: {', '.join(ARTIFACTS)}")
    if not isinstance(value, art.type):
        raise TypeError(f"artifact {key!r} must be a {art.type.__name__}, got {type(value).__name__}")
    return art.encode(value)


def decode_artifact(key: str, data: bytes) -> Any:
    return ARTIFACTS[key].decode(data)
