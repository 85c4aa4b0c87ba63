"""The staged pipeline runner: panorama -> depth -> gaussians -> mesh -> export.

One run writes one output folder: each stage's artifacts and files plus ``manifest.json``.
A stage is reused when its cache key (backend, backend version, config, seed, eye height and the
content hashes of its inputs) matches the manifest and its files still hash the same; every
file is written atomically, so a run killed at any moment resumes where it stopped and, with a
fixed seed, ends with byte-identical outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from ._resources import measure
from .artifacts import ARTIFACTS, decode_artifact, encode_artifact
from .errors import InputError, OutputError
from .io import TMP_PREFIX, atomic_write, safe_join
from .layers.diffusion import check_fill_configured
from .models import ModelSpec, check_model_folder, fingerprint, locate_model, model_record, require_safetensors
from .registry import STAGES, Backend, Request, StageContext, backends, get_backend

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "panorama": (),
    "depth": ("panorama", "given_depth", "semantics"),
    "gaussians": ("panorama", "depth", "semantics"),
    "mesh": ("panorama", "depth", "semantics", "gaussians"),
    "export": ("mesh", "gaussians", "panorama", "depth"),
}
"""Artifacts each stage may read (those produced earlier in the run)."""

PRESETS = ("fast", "balanced", "quality")

ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what to compute.

    Args:
        until: last stage to run (inclusive).
        rerun_from: re-run this stage and all later ones even when cached (None: use the cache).
        force: re-run every stage.
        backends: stage -> backend name, overriding the automatic choice.
        options: stage -> {config field: value}, overriding the preset (the CLI's --set).
        max_memory_gb: most resident memory the run may use, GB (None: what the system has
            available). A stage whose estimate exceeds it is scaled down with a note where it
            can be (a user panorama's working width), else refused before it starts.
        models: model role -> :class:`~worldgen.models.ModelSpec` (--model and worldgen.toml); a backend
            that declares the role receives the located folder in its config (``Backend.models``).
        defaults: stage -> backend -> {config field: value}: option defaults from worldgen.toml, applied
            over the preset and under ``options``, only to the backend they name.
    """

    until: str = "export"
    rerun_from: str | None = None
    force: bool = False
    backends: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    max_memory_gb: float | None = None
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    defaults: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)


@dataclass
class StageRecord:
    """What happened to one stage in this run."""

    stage: str
    backend: str | None
    status: str  # "ran", "cached" or "skipped"
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    files: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    stages: list[StageRecord]


def choose_backend(
    stage: str,
    request: Request,
    produced: set[str],
    chosen: Mapping[str, str],
    models: Collection[str] = (),
) -> Backend | None:
    """The backend a stage runs with: the user's choice, else the automatic rule.

    Args:
        models: the model roles the user configured (--model, worldgen.toml). Unless the user
            forced a backend, a backend of the stage that declares such a role is preferred: depth
            "depth" when no depth was given; panorama "panorama" for a prompt, "fill" for --image.

    Returns None when no backend is registered for the stage (it does not exist yet).
    """
    if stage in chosen:
        return get_backend(stage, chosen[stage])
    names = [b.name for b in backends(stage)]
    wanted = {
        "depth": () if "given_depth" in produced else ("depth",),
        "panorama": ("fill",) if request.image else ("panorama",) if request.prompt and not request.panorama else (),
    }.get(stage, tuple(models))
    for role in wanted:
        if role in models:
            for b in backends(stage):
                if role in b.models:
                    return get_backend(stage, b.name)
    if stage == "panorama":
        if request.panorama:
            return get_backend(stage, "file")
        if request.image:
            if "photo" in names:
                return get_backend(stage, "photo")
            raise InputError(
                "turning a photo into a 360° panorama needs a photo-to-panorama backend, and none is installed; "
                "give a 2:1 panorama with --panorama FILE, or a text prompt"
            )
        if request.prompt is None and request.spec is None:
            raise InputError("nothing to build: give a PROMPT, --panorama FILE, --image FILE or --spec FILE")
        if "procedural" in names:
            return get_backend(stage, "procedural")
        raise InputError("no text-to-panorama backend is installed; give a panorama with --panorama FILE")
    if stage == "depth" and "given_depth" in produced:
        return get_backend(stage, "given")
    preferred = {
        "depth": ("prior", "layout"),
        "gaussians": ("refine", "init"),
        "mesh": ("sheet",),
        "export": ("assets",),
    }
    for name in preferred.get(stage, ()):
        if name in names:
            return get_backend(stage, name)
    usable = [b for b in backends(stage) if b.name != "given" and b.unavailable() is None]
    return usable[0] if usable else None


def run_pipeline(
    request: Request,
    out_dir: str | os.PathLike,
    options: RunOptions = RunOptions(),
    progress: ProgressFn | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
) -> RunResult:
    """Run the stages up to ``options.until`` into ``out_dir``, reusing what is cached.

    Args:
        request: what to build.
        out_dir: the run's folder (created if missing).
        options: until / rerun_from / force / backend and option overrides.
        progress: called as (stage, fraction in [0, 1], message) while a stage works.
        on_stage: called with each stage's record when it finishes.

    Returns:
        The run's folder, manifest and per-stage records.
    """
    check_request(request, options)
    out = _prepare_out_dir(out_dir)
    previous = _read_manifest(out)
    prev_stages = previous.get("stages", {}) if previous.get("format") == 1 else {}
    until_i = STAGES.index(options.until)
    from_i = STAGES.index(options.rerun_from) if options.rerun_from else len(STAGES)

    manifest: dict[str, Any] = {
        "format": 1,
        "worldgen": __version__,
        "request": _request_record(request),
        "seed": request.seed,
        "preset": request.preset,
        "eye_height": request.eye_height,
        "libraries": _library_versions(),
        "stages": {},
    }
    # artifact key -> (sha256, file name) of everything produced so far in this run
    produced: dict[str, tuple[str, str]] = {}
    records: list[StageRecord] = []
    for i, stage in enumerate(STAGES):
        if i > until_i:
            if stage in prev_stages:  # keep what an earlier, longer run left, for `worldgen export`
                manifest["stages"][stage] = prev_stages[stage]
            continue
        backend = choose_backend(stage, request, set(produced), options.backends, set(options.models))
        if backend is None:
            rec = StageRecord(stage, None, "skipped", note="no backend installed for this stage")
            records.append(rec)
            if on_stage:
                on_stage(rec)
            continue
        cfg = backend.make_config(request.preset, _option_values(options, stage, backend.name))
        cfg, used_models = attach_models(backend, cfg, options.models)
        inputs = {k: produced[k] for k in STAGE_INPUTS[stage] if k in produced}
        old = prev_stages.get(stage)

        may_reuse = not options.force and i < from_i and old is not None
        key, reuse = _reusable(out, stage, backend, cfg, request, inputs, old if may_reuse else None, used_models)
        memory: dict[str, Any] = {}
        if not reuse:
            # Before the stage starts: estimate, and scale down or refuse (worldgen/memory.py).
            cfg, memory = _memory_guard(out, stage, backend, cfg, request, options, produced)
            if memory.get("scaled"):
                key, reuse = _reusable(
                    out, stage, backend, cfg, request, inputs, old if may_reuse else None, used_models
                )
        if reuse:
            entry = dict(old, cached=True)
            rec = StageRecord(stage, backend.name, "cached", files=sorted(old["files"]))
        else:
            entry, rec = _run_stage(out, stage, backend, cfg, request, inputs, key, progress)
            if memory:
                memory["peak_mb"] = entry["peak_rss_mb"]
                entry["memory"] = memory
            if used_models:
                entry["models"] = used_models
            if old:
                _remove_stale(out, old, entry)
        for akey, (fname, sha) in entry["artifacts"].items():
            produced[akey] = (sha, fname)
        manifest["stages"][stage] = entry
        if stage == "panorama" and "scene_spec" in entry["artifacts"]:
            manifest["scene_spec"] = json.loads((out / entry["artifacts"]["scene_spec"][0]).read_bytes())
        _write_manifest(out, manifest)
        records.append(rec)
        if on_stage:
            on_stage(rec)
    _write_manifest(out, manifest)
    return RunResult(out, manifest, records)


def _option_values(options: RunOptions, stage: str, backend: str) -> dict[str, Any]:
    """worldgen.toml's defaults for this backend, overridden by --set."""
    return {**options.defaults.get(stage, {}).get(backend, {}), **options.options.get(stage, {})}


def attach_models(backend: Backend, cfg: Any, models: Mapping[str, ModelSpec]) -> tuple[Any, dict[str, dict]]:
    """Fill the backend's model fields with located local folders.

    For each role the backend declares (``Backend.models``: role -> config field): a field the user
    already set (--set or worldgen.toml) names the model itself; otherwise the configured model of
    that role, if any. Each model is located offline, must hold safetensors weights, and is
    fingerprinted.

    Returns:
        A tuple: **config** with the fields set to absolute folder paths, and **records**
        role -> {role, source, revision, fingerprint} for the manifest and the cache key.
    """
    updates: dict[str, str] = {}
    records: dict[str, dict] = {}
    for role, fname in backend.models.items():
        current = getattr(cfg, fname)
        if current:
            spec = ModelSpec(role, str(current), origin="--set")
        elif role in models:
            spec = models[role]
        else:
            continue
        path = locate_model(spec)
        require_safetensors(path)
        updates[fname] = str(path)
        records[role] = model_record(spec, fingerprint(path))
    return (dataclasses.replace(cfg, **updates) if updates else cfg), records


def _run_stage(
    out: Path,
    stage: str,
    backend: Backend,
    cfg: Any,
    request: Request,
    inputs: dict[str, tuple[str, str]],
    key: str,
    progress: ProgressFn | None,
) -> tuple[dict, StageRecord]:
    decoded = {}
    for k, (_, fname) in inputs.items():
        try:
            decoded[k] = decode_artifact(k, (out / fname).read_bytes())
        except InputError as e:
            raise InputError(f"{fname} in {str(out)!r}: {e}") from e

    def report(fraction: float, message: str = "") -> None:
        if progress:
            progress(stage, min(max(float(fraction), 0.0), 1.0), message)

    ctx = StageContext(stage=stage, inputs=decoded, request=request, config=cfg, progress=report)
    with measure() as usage:
        result = backend.run(ctx)
        # Encode everything before writing anything, so a failing encoder leaves no partial output.
        blobs: dict[str, bytes] = {}
        art_files: dict[str, tuple[str, str]] = {}
        for akey, value in result.artifacts.items():
            data = encode_artifact(akey, value)
            fname = ARTIFACTS[akey].filename
            blobs[fname] = data
            art_files[akey] = (fname, _sha(data))
        for fname, data in result.files.items():
            safe_join(out, fname)
            if fname in blobs or fname == MANIFEST:
                raise OutputError(f"{stage} backend {backend.name!r} wrote {fname!r}, which another output owns")
            blobs[fname] = data
        for fname, data in blobs.items():
            atomic_write(safe_join(out, fname), data)
    entry = {
        "backend": backend.name,
        "backend_version": backend.version,
        "config": _jsonable(dataclasses.asdict(cfg)),
        "key": key,
        "inputs": {k: v[0] for k, v in inputs.items()},
        "artifacts": {k: list(v) for k, v in art_files.items()},
        "files": {fname: _sha(data) for fname, data in blobs.items()},
        "report": _jsonable(result.report),
        "wall_seconds": round(usage.seconds, 4),
        "peak_rss_mb": round(usage.peak_rss / 2**20, 1),
        "peak_rss_exact": usage.peak_is_exact,
        "start_rss_mb": round(usage.start_rss / 2**20, 1),
        "cached": False,
    }
    rec = StageRecord(stage, backend.name, "ran", usage.seconds, entry["peak_rss_mb"], sorted(blobs))
    return entry, rec


def _reusable(
    out: Path,
    stage: str,
    backend: Backend,
    cfg: Any,
    request: Request,
    inputs: Mapping[str, tuple[str, str]],
    old: dict | None,
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, bool]:
    """(cache key, whether ``old`` -- the previous run's entry, None when reuse is off -- matches it)."""
    key = _cache_key(stage, backend, cfg, request, {k: v[0] for k, v in inputs.items()}, models)
    return key, old is not None and old.get("key") == key and _outputs_intact(out, old)


def _memory_guard(
    out: Path,
    stage: str,
    backend: Backend,
    cfg: Any,
    request: Request,
    options: RunOptions,
    produced: Mapping[str, tuple[str, str]],
) -> tuple[Any, dict]:
    """Estimate the stage's peak before it starts; scale a panorama's working size down so the
    whole run fits, or refuse in one line. Returns (config to run, manifest "memory" record)."""
    from . import memory as mem
    from ._resources import available_memory, current_rss

    made = str(out / produced["panorama"][1]) if "panorama" in produced else None
    start_mb = current_rss() / mem.MB
    avail = available_memory()
    limits = []
    if options.max_memory_gb is not None:
        limits.append(options.max_memory_gb * 1024)
    if avail is not None:
        limits.append(start_mb + 0.9 * avail / mem.MB)  # keep a tenth for the system
    limit_mb = min(limits) if limits else None
    pixels = mem.panorama_pixels(stage, backend.name, cfg, request, made)
    est = mem.estimate_mb(stage, backend.name, cfg, pixels)
    record: dict[str, Any] = {
        "estimate_mb": None if est is None else round(start_mb + est, 1),
        "start_mb": round(start_mb, 1),
        "limit_mb": None if limit_mb is None else round(limit_mb, 1),
        "estimate_source": "worldgen/memory.py COSTS" if est is not None else "no estimate for this backend",
    }
    if limit_mb is None:
        return cfg, record
    field_name = next((f for f in ("max_width", "width") if stage == "panorama" and hasattr(cfg, f)), None)
    if field_name is not None:
        # The first stage fixes the working size of every later one: halve it until the whole
        # run (up to --until) fits, with a note.
        width0 = getattr(cfg, field_name)
        while True:
            w = getattr(cfg, field_name)
            px = w * (w // 2) if field_name == "width" or not pixels else min(pixels, w * (w // 2))
            own = mem.estimate_mb(
                stage, backend.name, cfg, mem.panorama_pixels(stage, backend.name, cfg, request, made)
            )
            need = max([own or 0.0] + _later_estimates(stage, request, options, px))
            if start_mb + need <= limit_mb or w <= 512:
                break
            cfg = dataclasses.replace(cfg, **{field_name: w // 2})
        est = mem.estimate_mb(stage, backend.name, cfg, mem.panorama_pixels(stage, backend.name, cfg, request, made))
        fits = est is None or start_mb + est <= limit_mb
        if getattr(cfg, field_name) != width0 and fits:
            note = (
                f"memory: panorama working width {width0} -> {getattr(cfg, field_name)} so the run fits in "
                f"{limit_mb / 1024:.1f} GB (--max-memory raises the limit)"
            )
            log.warning(note)
            record.update(scaled=True, note=note, estimate_mb=None if est is None else round(start_mb + est, 1))
    if est is not None and start_mb + est > limit_mb:
        raise InputError(
            f"the {stage} stage ({backend.name}) would need about {(start_mb + est) / 1024:.1f} GB but "
            f"{limit_mb / 1024:.1f} GB is available; close other programs, raise --max-memory, use --preset fast "
            "or a smaller panorama"
        )
    return cfg, record


def _later_estimates(first: str, request: Request, options: RunOptions, pixels: int) -> list[float]:
    """Estimated peaks (MB over the start) of the stages after ``first`` up to ``options.until``."""
    from . import memory as mem

    out = []
    produced = {"panorama", "given_depth"} if (request.depth or not request.panorama) else {"panorama"}
    for stage in STAGES[STAGES.index(first) + 1 : STAGES.index(options.until) + 1]:
        try:
            b = choose_backend(stage, request, produced, options.backends)
            if b is None:
                continue
            cfg = b.make_config(request.preset, options.options.get(stage))
        except InputError:
            continue
        e = mem.estimate_mb(stage, b.name, cfg, pixels)
        if e is not None:
            out.append(e)
    return out


def check_request(request: Request, options: RunOptions = RunOptions()) -> None:
    """Raise InputError for a request or options that cannot run (missing files, conflicts...)."""
    for name in (options.until, options.rerun_from):
        if name is not None and name not in STAGES:
            raise InputError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    for stage in list(options.backends) + list(options.options):
        if stage not in STAGES:
            raise InputError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    # Fail before any stage runs: a typo in a backend or option must not cost a long run.
    for stage, name in options.backends.items():
        get_backend(stage, name)
    for stage, values in options.options.items():
        if stage in options.backends:
            get_backend(stage, options.backends[stage]).make_config(request.preset, values)
            continue
        fields = {f.name for b in backends(stage) for f in dataclasses.fields(b.config)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise InputError(
                f"no {stage} backend has option {', '.join(unknown)}; "
                f"options are: {', '.join(sorted(fields)) or 'none'}"
            )
        # Build the config of the backend that will run, so a bad value (not only a bad name)
        # fails now too. A synthesizer or a --depth file delivers depth with the panorama.
        produced = {"given_depth"} if (request.depth or not request.panorama) else set()
        try:
            chosen = choose_backend(stage, request, produced, options.backends, set(options.models))
        except InputError:
            chosen = None  # the run itself reports this, before it writes anything
        if chosen is not None and set(values) <= {f.name for f in dataclasses.fields(chosen.config)}:
            chosen.make_config(request.preset, values)
    for stage, per_backend in options.defaults.items():
        if stage not in STAGES:
            raise InputError(
                f"worldgen.toml: unknown stage {stage!r} (table {stage}.*); stages are {', '.join(STAGES)}"
            )
        for name, values in per_backend.items():
            try:
                get_backend(stage, name, require_available=False).make_config(request.preset, values)
            except (InputError, TypeError, ValueError) as e:
                raise InputError(f"worldgen.toml, table {stage}.{name}: {e}") from e
    # a configured model that a backend here would use must be there (offline, safetensors) before
    # any stage writes anything
    used_roles = {role for st in STAGES for b in backends(st) for role in b.models}
    for role, spec in options.models.items():
        if role in used_roles:
            check_model_folder(role, locate_model(spec))
    check_fill_configured(options)  # --set mesh.inpaint=diffusion needs --model fill=... (worldgen/layers/diffusion.py)
    if request.fov is not None and not (1.0 <= request.fov <= 179.0):
        raise InputError(f"--fov {request.fov} must lie in [1, 179] degrees (the photo's horizontal field of view)")
    if request.fov is not None and not request.image:
        raise InputError("--fov is the field of view of a photo; it needs --image")
    if request.preset not in PRESETS:
        raise InputError(f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}")
    if not (0.0 < request.eye_height < 1000.0):
        raise InputError(f"eye height {request.eye_height} m must lie in (0, 1000)")
    if request.depth and not request.panorama:
        raise InputError("--depth needs --panorama: depth belongs to a given panorama")
    sources = [x for x in (request.image, request.panorama) if x]
    if len(sources) > 1:
        raise InputError("give either --image or --panorama, not both")
    if sources and (request.prompt or request.spec):
        raise InputError("a prompt or --spec builds a procedural world; drop it when giving --image/--panorama")
    for label, path in (
        ("panorama", request.panorama),
        ("image", request.image),
        ("depth", request.depth),
        ("spec", request.spec),
    ):
        if path is not None and Path(path).is_dir():
            raise InputError(f"{label} {path!r} is a folder; give the {label} file itself")
        if path is not None and not Path(path).is_file():
            raise InputError(f"{label} file {path!r} does not exist; check the path")
    if options.max_memory_gb is not None and not options.max_memory_gb > 0:
        raise InputError(f"--max-memory {options.max_memory_gb} GB must be a positive number of gigabytes")
    if not 0 <= request.seed < 2**63:
        raise InputError(f"seed {request.seed} must lie in [0, 2^63)")


def _prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output path {str(out)!r} is a file; choose a folder with -o")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f"{TMP_PREFIX}probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to output folder {str(out)!r} ({e.strerror}); choose another with -o") from e
    for stale in out.rglob(f"{TMP_PREFIX}*"):  # torn writes of a killed run
        with contextlib.suppress(OSError):
            stale.unlink()
    return out.resolve()


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a finished run; InputError if the folder holds no run."""
    out = Path(out_dir)
    m = _read_manifest(out)
    if not m:
        raise InputError(f"{str(out)!r} holds no worldgen run (no readable {MANIFEST}); run 'worldgen generate' first")
    return m


def _read_manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(out: Path, manifest: dict) -> None:
    atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def _outputs_intact(out: Path, entry: dict) -> bool:
    try:
        return all(_sha((out / f).read_bytes()) == sha for f, sha in entry["files"].items())
    except (OSError, KeyError, TypeError):
        return False


def _remove_stale(out: Path, old: dict, new: dict) -> None:
    for fname in set(old.get("files", {})) - set(new["files"]):
        with contextlib.suppress(OSError, OutputError):
            safe_join(out, fname).unlink()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: str | None) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _request_record(request: Request) -> dict:
    rec = dataclasses.asdict(request)
    for k in ("image", "panorama", "depth", "spec"):
        rec[f"{k}_sha256"] = _file_sha(getattr(request, k))
    return rec


def _cache_key(
    stage: str,
    backend: Backend,
    cfg: Any,
    request: Request,
    input_hashes: dict[str, str],
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    config = _jsonable(dataclasses.asdict(cfg))
    for role, fname in backend.models.items():
        if models and role in models:
            # The folder's content, not where it lies, is what the stage depends on.
            config[fname] = models[role]["fingerprint"]
    payload: dict[str, Any] = {
        "stage": stage,
        "backend": backend.name,
        "version": backend.version,
        "config": config,
        "inputs": input_hashes,
        "seed": request.seed,
        "eye_height": request.eye_height,
    }
    if stage != "panorama" and models and "fill" in models:
        payload["prompt"] = request.prompt  # the diffusion fill of the hidden layer paints with the run's prompt
    if stage == "panorama":
        # The first stage reads the request itself: its content, not its paths, is the input.
        payload["request"] = {
            "prompt": request.prompt,
            "fov": request.fov,
            **{k: _file_sha(getattr(request, k)) for k in ("image", "panorama", "depth", "spec")},
        }
    return _sha(json.dumps(payload, sort_keys=True).encode())


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else str(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if hasattr(x, "item"):
        return _jsonable(x.item())
    return str(x)


def _library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "numpy",
        "torch",
        "gsplat",
        "open3d",
        "trimesh",
        "pygltflib",
        "usd-core",
        "xatlas",
        "fast-simplification",
        "pillow",
        "scipy",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def load_artifact(run_dir: str | os.PathLike, key: str) -> Any:
    """Read one artifact ("panorama", "depth", "gaussians", "mesh"...) of a finished run.

    Raises InputError when the run has no such artifact or its file no longer matches the manifest.

    Example:
        >>> cloud = load_artifact("out/forest", "gaussians")  # doctest: +SKIP
    """
    m = read_manifest(run_dir)
    for entry in m.get("stages", {}).values():
        if key in entry.get("artifacts", {}):
            fname, sha = entry["artifacts"][key]
            path = Path(run_dir) / fname
            try:
                data = path.read_bytes()
            except OSError as e:
                raise InputError(f"{path} is missing; re-run 'worldgen generate' for this folder") from e
            if _sha(data) != sha:
                raise InputError(f"{path} changed since the run wrote it; re-run 'worldgen generate' for this folder")
            return decode_artifact(key, data)
    raise InputError(f"the run in {str(run_dir)!r} has no {key!r}; run the stage that makes it first")
