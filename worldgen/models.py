"""Model configuration shared by every model backend: which weights play which role, and where they are.

A *role* is what a model does for the pipeline (:data:`MODEL_ROLES`). The user names a model per role
with ``worldgen generate --model ROLE=ID|PATH`` or in a ``worldgen.toml``::

    [models]
    depth = "depth-anything/Depth-Anything-V2-Small-hf"          # a Hugging Face id
    segmentation = { source = "/models/segformer", revision = "main" }

    [depth.transformers]        # option defaults for one backend, applied under --set
    view_size = 518

The first ``worldgen.toml`` found is read: ``./worldgen.toml``, else
``$XDG_CONFIG_HOME/worldgen/worldgen.toml`` (``~/.config/worldgen/worldgen.toml``). Models are
located offline only: a local folder as is, or a Hugging Face id already in the local cache.
Only safetensors weights are accepted, never pickles. A backend declares the roles it uses in
``Backend.models`` (role -> name of the config field that receives the located folder); the
runner fills that field and adds the folder's :func:`fingerprint` to the stage's cache key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

MODEL_ROLES: dict[str, str] = {
    "depth": "a transformers depth-estimation model (Depth Anything, DPT, ZoeDepth, Depth Pro...)",
    "panorama": "a diffusers text-to-image pipeline (text -> 360 panorama)",
    "fill": "a diffusers inpainting/fill pipeline (photo -> 360 outpainting, hidden-surface inpainting)",
    "segmentation": "a transformers semantic-segmentation model (optional sky mask)",
}
"""Role -> what a model in that role is."""

CONFIG_NAME = "worldgen.toml"

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Weight files that are Python pickles: refused, since unpickling runs arbitrary code."""

_CONTENT_SUFFIXES = (".json", ".txt", ".yaml", ".yml", ".toml", ".model", ".py")
"""Small text files whose content enters the fingerprint (configs, tokenizers); other files count by name and size."""


@dataclass(frozen=True)
class ModelSpec:
    """One configured model.

    Args:
        role: one of :data:`MODEL_ROLES`.
        source: a Hugging Face id ("org/name") or a local folder.
        revision: a Hugging Face revision (branch, tag or commit), or None for the cached default.
        options: extra settings from ``worldgen.toml`` for whoever loads the model.
        origin: where the spec came from ("--model", or the config file's path), for error messages.
    """

    role: str
    source: str
    revision: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "--model"


@dataclass(frozen=True)
class UserConfig:
    """What a ``worldgen.toml`` holds.

    Args:
        path: the file read, or None when there is none.
        models: role -> spec, from its ``[models]`` table.
        backend_options: stage -> backend -> {config field: value}, from its ``[STAGE.BACKEND]`` tables.
    """

    path: Path | None = None
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    backend_options: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)


def config_paths(cwd: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where ``worldgen.toml`` is looked for, in order: the working folder, then the user's config folder."""
    env = os.environ if environ is None else environ
    base = Path(cwd) if cwd is not None else Path.cwd()
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".config")
    return [base / CONFIG_NAME, Path(xdg) / "worldgen" / CONFIG_NAME]


def load_user_config(
    cwd: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    path: str | os.PathLike | None = None,
) -> UserConfig:
    """Read the first ``worldgen.toml`` found (see :func:`config_paths`), or an explicit ``path``.

    Returns an empty :class:`UserConfig` when there is none. Errors (bad TOML, unknown role, a value
    of the wrong type) are InputErrors naming the file and the key.
    """
    if path is not None:
        candidates = [Path(path)]
        if not candidates[0].is_file():
            raise InputError(f"config file {str(path)!r} does not exist; check the path")
    else:
        candidates = [p for p in config_paths(cwd, environ) if p.is_file()]
    if not candidates:
        return UserConfig()
    cfg_path = candidates[0]
    try:
        data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {cfg_path}: {e}; fix or remove the file") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{cfg_path} is not valid TOML ({e}); fix the file") from e
    models: dict[str, ModelSpec] = {}
    options: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in data.items():
        if key == "models":
            if not isinstance(value, dict):
                raise InputError(f'{cfg_path}: [models] must be a table of ROLE = "ID-or-PATH"')
            for role, item in value.items():
                models[role] = _spec_from_toml(cfg_path, role, item)
            continue
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise InputError(
                f"{cfg_path}: key {key!r} is neither [models] nor a [STAGE.BACKEND] table of options "
                "(e.g. [depth.transformers])"
            )
        for backend, fields in value.items():
            options.setdefault(key, {})[backend] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()
            }
    return UserConfig(cfg_path, models, options)


def _spec_from_toml(cfg_path: Path, role: str, item: Any) -> ModelSpec:
    _check_role(role, f"{cfg_path}: [models] {role}")
    where = f"{cfg_path}: models.{role}"
    if isinstance(item, str):
        source, revision, opts = item, None, {}
    elif isinstance(item, dict):
        opts = dict(item)
        source = opts.pop("source", None)
        revision = opts.pop("revision", None)
        if not isinstance(source, str):
            raise InputError(f'{where} needs source = "ID-or-PATH"')
        if revision is not None and not isinstance(revision, str):
            raise InputError(f"{where}.revision must be a string (a branch, tag or commit)")
    else:
        raise InputError(f'{where} must be "ID-or-PATH" or {{ source = ..., revision = ... }}')
    if not source.strip():
        raise InputError(f"{where} is empty; give a Hugging Face id or a local folder")
    source = _expand_source(source.strip(), cfg_path.parent)
    return ModelSpec(role, source, revision, opts, origin=str(cfg_path))


def _expand_source(source: str, base: Path | None) -> str:
    """``~`` expanded; a relative path that exists is made absolute (relative to ``base`` for a config file)."""
    if source.startswith("~"):
        return str(Path(source).expanduser())
    if base is not None and _looks_like_path(source) and not Path(source).is_absolute():
        candidate = base / source
        if candidate.exists():
            return str(candidate.resolve())
    return source


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~", ".\\")) or Path(source).exists()


def _check_role(role: str, where: str) -> None:
    if role not in MODEL_ROLES:
        raise InputError(f"{where}: unknown model role {role!r}; roles are: {', '.join(MODEL_ROLES)}")


def resolve_models(cli_items: Iterable[str], user_config: UserConfig | None = None) -> dict[str, ModelSpec]:
    """Models by role: ``worldgen.toml``'s, overridden by the CLI's ``ROLE=SOURCE`` items.

    Args:
        cli_items: "ROLE=ID-or-PATH" strings from ``--model``.
        user_config: from :func:`load_user_config`, or None.

    Returns:
        role -> :class:`ModelSpec`.
    """
    out: dict[str, ModelSpec] = dict(user_config.models) if user_config else {}
    for item in cli_items:
        role, sep, source = item.partition("=")
        role, source = role.strip(), source.strip()
        if not sep or not role or not source:
            raise InputError(
                f"--model {item!r} is not ROLE=ID-or-PATH (e.g. depth=depth-anything/Depth-Anything-V2-Small-hf)"
            )
        _check_role(role, f"--model {item}")
        out[role] = ModelSpec(role, _expand_source(source, Path.cwd()), origin="--model")
    return out


def locate_model(spec: ModelSpec) -> Path:
    """The local folder of a model, found offline.

    A local folder is used as is. Anything else is read as a Hugging Face id and looked up in the
    local Hugging Face cache only (nothing is downloaded).

    Raises:
        InputError: in one line, naming the id and how to fetch it (or that a folder is missing).
    """
    src = spec.source
    p = Path(src).expanduser()
    if p.is_dir():
        return p.resolve()
    if p.exists():
        raise InputError(
            f"{spec.role} model {src!r} is a file; give the model's folder (with config.json) or a Hugging Face id"
        )
    # "models/dpt-large" where ./models exists is a mistyped folder, not the Hugging Face id "models/dpt-large"
    in_local_folder = "/" in src and p.parent.is_dir() and not p.parent.samefile(".")
    if _looks_like_path(src) or src.count("/") > 1 or os.sep == "\\" and "\\" in src or in_local_folder:
        raise InputError(f"{spec.role} model folder {src!r} does not exist; check the path")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise InputError(
            f"{spec.role} model {src!r} is not a local folder and huggingface_hub is not installed; "
            "pip install 'worldgen[models]', or give a local folder"
        ) from e
    rev = f" --revision {spec.revision}" if spec.revision else ""
    try:
        return Path(snapshot_download(repo_id=src, revision=spec.revision, local_files_only=True)).resolve()
    except Exception as e:  # every failure here means "not available offline"
        kind = type(e).__name__
        if kind in ("HFValidationError",):
            raise InputError(
                f"{spec.role} model {src!r} is neither a local folder nor a Hugging Face id (org/name)"
            ) from e
        raise InputError(
            f"{spec.role} model {src!r} is not in the local Hugging Face cache; fetch it with "
            f"'hf download {src}{rev}', or give a local folder"
        ) from e


def require_safetensors(path: str | os.PathLike) -> None:
    """Refuse a model folder whose weights are only pickles (or that holds no weights at all).

    Every folder that holds pickle weights (.bin, .pt, .pth, .ckpt, .pkl) must also hold
    .safetensors weights, which the loaders use (they always pass ``use_safetensors=True``).
    """
    root = Path(path)
    files = [f for f in _walk(root)]
    safes = {f.parent for f in files if f.name.endswith(".safetensors")}
    pickles = [f for f in files if f.suffix.lower() in PICKLE_SUFFIXES and f.parent not in safes]
    if pickles:
        rel = pickles[0].relative_to(root)
        raise InputError(
            f"model {root} has only pickle weights ({rel}); worldgen loads safetensors only: "
            "convert them (e.g. save_pretrained(..., safe_serialization=True)) or use a safetensors release"
        )
    if not safes:
        raise InputError(f"model {root} holds no .safetensors weights; give a folder saved with save_pretrained")


def check_safetensors_headers(path: str | os.PathLike) -> None:
    """Refuse a model folder whose .safetensors files are cut off or corrupt (headers only)."""
    root = Path(path)
    for f in _walk(root):
        if f.name.endswith(".safetensors"):
            _check_safetensors_header(f, root)


def _check_safetensors_header(f: Path, root: Path) -> None:
    """Refuse a cut-off or corrupt .safetensors file from its header alone (no tensor is read).

    The format: an 8-byte little-endian header length N, N bytes of JSON naming each tensor's byte
    range, then the data. A download or copy that stopped early passed every other check and
    then crashed the loader with a traceback (safetensors' own error is no OSError).
    """
    rel = f.relative_to(root)
    bad = f"model {root}: {rel} is cut off or corrupt"
    fix = "re-download or re-save the model"
    try:
        size = f.stat().st_size
        with f.open("rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            raw = fh.read(n) if 2 <= n <= min(size - 8, 100_000_000) else None
        header = json.loads(raw) if raw is not None else None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InputError(f"{bad} ({type(e).__name__}); {fix}") from e
    if raw is None:
        raise InputError(f"{bad} ({size} bytes, no complete header); {fix}")
    if not isinstance(header, dict):
        raise InputError(f"{bad} (its header is not a table of tensors); {fix}")
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
    ]
    need = 8 + n + max((int(e) for e in ends), default=0)
    if size < need:
        raise InputError(f"{bad} ({size} of {need} bytes); {fix}")


def check_model_folder(role: str, path: str | os.PathLike) -> None:
    """Everything about a located model folder that can be checked before any stage writes a file:
    safetensors weights (:func:`require_safetensors`) and, for transformers' depth backend, complete
    ones and a config that is no other kind of model
    (:func:`worldgen.depth.model.check_depth_folder`, which reads JSON only, no weights)."""
    require_safetensors(path)
    from .registry import backends

    # only when transformers' depth backend is the one that takes the role (a plugin may take it too)
    if role == "depth" and any(b.name == "transformers" and role in b.models for b in backends("depth")):
        from .depth.model import check_depth_folder

        check_depth_folder(Path(path))  # what the folder is comes before whether its weights are whole
        # transformers' loader meets a cut-off file with safetensors' own error and a traceback;
        # diffusers' loader (the other roles) says it in one line already
        check_safetensors_headers(path)
    if role == "segmentation" and any(b.name == "transformers" and role in b.models for b in backends("depth")):
        from .depth.model import check_segmentation_folder

        check_segmentation_folder(Path(path))


def fingerprint(path: str | os.PathLike) -> str:
    """A content fingerprint of a model folder, cheap enough to compute on every run.

    sha256 over every file's relative path, plus the content of small text files (configs,
    tokenizers) and the size of the others (weights; hashing gigabytes of weights per run is too slow).
    Hidden files and folders (.cache, .git) are left out.
    """
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(_walk(root), key=lambda f: f.relative_to(root).as_posix()):
        rel = f.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        if f.suffix.lower() in _CONTENT_SUFFIXES:
            h.update(hashlib.sha256(f.read_bytes()).digest())
        else:
            h.update(str(f.stat().st_size).encode())
        h.update(b"\n")
    return h.hexdigest()


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / n for n in filenames if not n.startswith("."))
    return out


def model_record(spec: ModelSpec, fp: str) -> dict[str, Any]:
    """What the manifest records about one model used by a stage."""
    return {"role": spec.role, "source": spec.source, "revision": spec.revision, "fingerprint": fp}


__all__ = [
    "CONFIG_NAME",
    "MODEL_ROLES",
    "ModelSpec",
    "UserConfig",
    "config_paths",
    "fingerprint",
    "load_user_config",
    "locate_model",
    "model_record",
    "check_model_folder",
    "check_safetensors_headers",
    "require_safetensors",
    "resolve_models",
]
