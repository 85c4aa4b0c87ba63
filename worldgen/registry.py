"""Backends registered by name, per stage.

A backend is a plain function over a :class:`StageContext` that returns a :class:`StageResult`.
Modules that define backends call :func:`register_backend` when they are imported; the modules
listed in ``_BACKEND_MODULES`` are imported the first time the registry is read, so adding a
backend never means touching the runner.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BackendUnavailableError, InputError

STAGES: tuple[str, ...] = ("panorama", "depth", "gaussians", "mesh", "export")
"""Stage names, in pipeline order."""

# Modules whose import registers built-in backends. Keep one line per module.
_BACKEND_MODULES: tuple[str, ...] = (
    "worldgen.stages.panorama",
    "worldgen.depth.given",
    "worldgen.depth.layout",
    "worldgen.procedural.backend",
    "worldgen.exporters.backend",
    "worldgen.splats.refine_backend",
    "worldgen.splats.init_backend",
    "worldgen.mesh.backend",
    "worldgen.depth.prior",
    "worldgen.stages.photo",
    "worldgen.depth.model",
    "worldgen.panorama.backend",
)


@dataclass(frozen=True)
class Request:
    """What the user asked for: the pipeline's own inputs (everything before the first stage).

    Args:
        prompt: text prompt, or None.
        image: path of a photo to turn into a panorama, or None.
        panorama: path of a user equirect panorama (2:1), or None.
        depth: path of depth for ``panorama`` (EXR, 16-bit PNG in millimetres, or NPY), or None.
        spec: path of an edited SceneSpec JSON (procedural worlds), or None.
        seed: random seed; the same inputs and seed give the same bytes.
        eye_height: capture camera height above the ground, metres.
        preset: "fast", "balanced" or "quality".
        fov: horizontal field of view of ``image``, degrees, or None to read it from EXIF.
    """

    prompt: str | None = None
    image: str | None = None
    panorama: str | None = None
    depth: str | None = None
    spec: str | None = None
    seed: int = 0
    eye_height: float = 1.6
    preset: str = "balanced"
    fov: float | None = None


@dataclass
class StageContext:
    """Everything a backend may read.

    Args:
        stage: the stage being run.
        inputs: artifacts of earlier stages by key ("panorama", "depth", "semantics"...), already
            decoded from their files (so a cached and a fresh run see identical values).
        request: the user's request.
        config: the backend's config dataclass instance.
        progress: call with (fraction done in [0, 1], short message) to report progress.
    """

    stage: str
    inputs: Mapping[str, Any]
    request: Request
    config: Any
    progress: Callable[[float, str], None] = lambda fraction, message="": None

    @property
    def seed(self) -> int:
        return self.request.seed


@dataclass
class StageResult:
    """What a backend returns.

    Args:
        artifacts: key -> value for the typed artifacts of ``worldgen.artifacts.ARTIFACTS``.
        files: extra files (previews, exported assets): relative file name -> bytes.
        report: JSON-serialisable facts for the manifest (counts, sizes, choices made).
    """

    artifacts: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoConfig:
    """A backend without parameters."""


@dataclass(frozen=True)
class Backend:
    """A named implementation of one stage.

    Args:
        stage: one of :data:`STAGES`.
        name: unique within the stage.
        run: the implementation.
        summary: one line for ``worldgen info`` / ``worldgen stages``.
        config: frozen dataclass of hyper-parameters, every field defaulted.
        presets: preset name -> field overrides of ``config``.
        version: bump when outputs change for the same inputs; part of the cache key.
        unavailable: returns None when the backend can run here, else why not and the fix.
        models: model role (see worldgen.models.MODEL_ROLES) -> name of the config field that receives
            the located local folder of the configured model, as a string.
        check_model: loads a model folder for ``worldgen info``; returns None when it loads, else why not.
    """

    stage: str
    name: str
    run: Callable[[StageContext], StageResult]
    summary: str
    config: type = NoConfig
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    version: str = "1"
    unavailable: Callable[[], str | None] = lambda: None
    models: Mapping[str, str] = field(default_factory=dict)
    check_model: Callable[[Path], str | None] | None = None

    def make_config(self, preset: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """Build the config for ``preset`` with user overrides; unknown fields are an InputError."""
        values = dict(self.presets.get(preset, {}))
        values.update(overrides or {})
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"{self.stage} backend {self.name!r} has no option {', '.join(unknown)}; "
                f"its options are: {', '.join(sorted(known)) or 'none'}"
            )
        config = self.config(**values)
        # every number option given by the user is a number: a backend that reads its options only
        # as it runs (most do) met 'abc' or NaN there, as a TypeError traceback or a silent 'off'
        # (the config's own checks, where it has them, have run above with their own words)
        for f in dataclasses.fields(self.config):
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if f.name not in (overrides or {}) or kind not in ("float", "int"):
                continue
            v = getattr(config, f.name)
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if kind == "int" and not (number and isinstance(v, int)):
                raise InputError(
                    f"{self.stage} option {f.name} must be a whole number, not {v!r} (default {f.default!r})"
                )
            if kind == "float" and not (number and math.isfinite(v)):
                raise InputError(
                    f"{self.stage} option {f.name} must be a finite number, not {v!r} (default {f.default!r})"
                )
        return config


_REGISTRY: dict[str, dict[str, Backend]] = {s: {} for s in STAGES}
_loaded = False


def register_backend(backend: Backend) -> Backend:
    """Add a backend; registering the same stage/name twice replaces the earlier one."""
    if backend.stage not in _REGISTRY:
        raise ValueError(f"unknown stage {backend.stage!r}; stages are {', '.join(STAGES)}")
    if not dataclasses.is_dataclass(backend.config):
        raise TypeError(f"backend {backend.name!r}: config must be a dataclass")
    _REGISTRY[backend.stage][backend.name] = backend
    return backend


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _BACKEND_MODULES:
            importlib.import_module(mod)


def backends(stage: str) -> list[Backend]:
    """All backends registered for ``stage``, in registration order."""
    _load()
    if stage not in _REGISTRY:
        raise InputError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    return list(_REGISTRY[stage].values())


def available_backends(stage: str) -> list[str]:
    """Names of the backends of ``stage`` that can run on this machine."""
    return [b.name for b in backends(stage) if b.unavailable() is None]


def get_backend(stage: str, name: str, *, require_available: bool = True) -> Backend:
    """Look up a backend; raise a one-line error naming the choices or why it cannot run."""
    table = {b.name: b for b in backends(stage)}
    if name not in table:
        raise InputError(f"unknown {stage} backend {name!r}; choose one of: {', '.join(table) or 'none registered'}")
    b = table[name]
    if require_available:
        why = b.unavailable()
        if why:
            raise BackendUnavailableError(f"{stage} backend {name!r} cannot run here: {why}")
    return b
