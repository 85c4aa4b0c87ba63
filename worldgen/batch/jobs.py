"""Job files: YAML, JSONL or CSV -> validated :class:`Job` values, or every mistake at once.

A job file is data. YAML is read with PyYAML's safe loader (plain scalars, lists and mappings;
a tag that would build an object is an error) and refused when its aliases expand past
:data:`MAX_VALUES` values (an "alias bomb") or when it nests too deeply; JSONL with ``json``; CSV
with ``csv``. Nothing in a job file is executed or unpickled.

Fields are ``worldgen generate``'s options under their long names (see docs/batch.md): ``name``,
one input (``prompt``, ``spec``, ``image`` or ``panorama`` with optional ``depth``), ``seed``,
``preset``, ``eye_height``, ``until``, ``max_splats``, ``engine``, ``format``, ``backend``,
``set``, ``model``, and ``gpu`` and ``timeout`` for the scheduler. A ``defaults`` block (YAML: a top-level key;
JSONL: a line ``{"defaults": {...}}``) gives values for every job; a job's own values win, and its
``backend``/``set``/``model`` entries are merged over the defaults' entry by entry.

Paths in a job file are relative to the job file's folder. The whole file is checked before any
job runs, with the checks ``worldgen generate`` makes (:func:`worldgen.pipeline.check_request`);
each problem is reported as ``FILE:LINE: job NAME: field FIELD: what is wrong and the fix``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldgen.errors import InputError
from worldgen.models import ModelSpec, UserConfig, load_user_config, resolve_models
from worldgen.overrides import apply_shorthands, option_map, parse_backends, parse_options, parse_value
from worldgen.pipeline import PRESETS, RunOptions, check_request, choose_backend
from worldgen.registry import STAGES, Request

from .names import folder_name

MAX_VALUES = 2_000_000
"""Most values a YAML job file may expand to through aliases (10,000 jobs use about 200,000)."""

MAX_BYTES = 256 * 2**20
"""Largest job file read."""

MAX_ERRORS = 50
"""Problems listed before the rest are summarised as a count."""

INPUTS = ("prompt", "spec", "image", "panorama", "depth")
PATH_FIELDS = ("spec", "image", "panorama", "depth")
GPU_CHOICES = ("auto", "yes", "no")


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(Request))


class JobFileError(InputError):
    """A job file with problems; ``errors`` holds one line per problem (the message gives them all)."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        extra = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        super().__init__("\n".join(errors[:MAX_ERRORS]) + extra)


@dataclass(frozen=True)
class Job:
    """One validated job.

    Args:
        name: the name in the job file.
        folder: the job's run folder, relative to the batch root (see :mod:`worldgen.batch.names`).
        source: ``FILE:LINE`` where the job is defined.
        request: what to build; input paths absolute.
        until: last stage to run.
        backends: stage -> backend name.
        options: stage -> {config field: value}.
        models: role -> model spec fields (source, revision, ...), from the job's ``model`` field over
            worldgen.toml's ``[models]``, resolved by the batch driver.
        defaults: stage -> backend -> option defaults from worldgen.toml (applied under ``options``).
        gpu: "auto" (a GPU worker when one is free), "yes" (wait for a GPU) or "no" (CPU only).
        timeout: seconds one attempt may run (None: the batch's --timeout).
    """

    name: str
    folder: str
    source: str
    request: Request
    until: str = "export"
    backends: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    defaults: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    gpu: str = "auto"
    timeout: float | None = None

    def run_options(self) -> RunOptions:
        kw: dict[str, Any] = {"until": self.until, "backends": dict(self.backends), "options": _tuples(self.options)}
        if self.models:
            kw["models"] = {role: ModelSpec(role=role, **spec) for role, spec in self.models.items()}
        if self.defaults:
            kw["defaults"] = {stage: _tuples(by_backend) for stage, by_backend in self.defaults.items()}
        return RunOptions(**kw)

    def inputs(self) -> dict[str, str]:
        """Input field -> absolute path of the files this job reads."""
        return {k: getattr(self.request, k) for k in PATH_FIELDS if getattr(self.request, k)}

    @property
    def key(self) -> str:
        """sha256 of what the job computes, input files by field (their content is checked apart)."""
        r = self.request
        req = {f: getattr(r, f) for f in _REQUEST_FIELDS if f not in PATH_FIELDS}
        req.update({k: bool(getattr(r, k)) for k in PATH_FIELDS})
        payload = {
            "request": req,
            "until": self.until,
            "backends": dict(self.backends),
            "options": self.options,
            "models": dict(self.models),
            "defaults": self.defaults,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()

    def to_json(self) -> dict:
        """Plain JSON data (what travels to a worker process or a Ray task)."""
        d = dataclasses.asdict(self)
        d["options"] = json.loads(json.dumps(self.options, default=list))
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Job:
        return cls(
            name=str(d["name"]),
            folder=str(d["folder"]),
            source=str(d["source"]),
            request=Request(**d["request"]),
            until=d["until"],
            backends=dict(d["backends"]),
            options=_tuples(d["options"]),
            models=dict(d["models"]),
            defaults=d.get("defaults") or {},
            gpu=d["gpu"],
            timeout=d.get("timeout"),
        )


def _tuples(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    # The CLI hands list values to configs as tuples; a job must configure a backend identically.
    return {s: {k: tuple(v) if isinstance(v, list) else v for k, v in vals.items()} for s, vals in options.items()}


# ---------------------------------------------------------------------------------------------
# Field conversion: one function per field, from YAML/JSON values or CSV text.
# ---------------------------------------------------------------------------------------------


class _FieldError(ValueError):
    pass


def _text(v: Any, text: bool) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise _FieldError(f"must be text, got {_kind(v)} (quote it)")
    s = str(v)
    if "\x00" in s:
        raise _FieldError("must not contain NUL characters")
    return s


def _int(v: Any, text: bool) -> int:
    if text and isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            raise _FieldError(f"must be a whole number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _FieldError(f"must be a whole number, got {_kind(v)}")
    return v


def _float(v: Any, text: bool) -> float:
    if text and isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise _FieldError(f"must be a number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _FieldError(f"must be a number, got {_kind(v)}")
    return float(v)


def _seconds(v: Any, text: bool) -> float:
    x = _float(v, text)
    if not 0.0 < x < float("inf"):
        raise _FieldError(f"must be a positive number of seconds, got {v!r}")
    return x


def _gpu(v: Any, text: bool) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    s = str(v).strip().lower()
    table = {"auto": "auto", "yes": "yes", "true": "yes", "1": "yes", "no": "no", "false": "no", "0": "no"}
    if s not in table:
        raise _FieldError(f"must be auto, yes or no, got {v!r}")
    return table[s]


def _items(v: Any, text: bool, sep: str) -> list[str]:
    """A list of strings from a list, or from text separated by ``sep`` (a regex)."""
    if isinstance(v, str):
        return [p for p in (x.strip() for x in re.split(sep, v)) if p]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return [x.strip() for x in v]
    raise _FieldError(f"must be a list of text items, got {_kind(v)}")


def _formats(v: Any, text: bool) -> tuple[str, ...]:
    return tuple(_items(v, text, r"[,;\s]+"))


def _pairs(v: Any, text: bool, example: str) -> dict[str, str]:
    if isinstance(v, dict):
        out = {}
        for k, name in v.items():
            if not isinstance(name, str) or not isinstance(k, str):
                raise _FieldError(f"must map names to text, e.g. {example}")
            out[k.strip()] = name.strip()
        return out
    try:
        return parse_backends(_items(v, text, r"[;\s]+"))
    except ValueError as e:
        raise _FieldError(str(e)) from None


def _backend(v: Any, text: bool) -> dict[str, str]:
    out = _pairs(v, text, "{mesh: tsdf}")
    for stage in out:
        if stage not in STAGES:
            raise _FieldError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    return out


def _model(v: Any, text: bool) -> dict[str, str]:
    return _pairs(v, text, "{depth: depth-anything/Depth-Anything-V2-Small-hf}")


def _set(v: Any, text: bool) -> dict[str, dict[str, Any]]:
    try:
        if isinstance(v, dict):  # {mesh.max_triangles: 1000} and/or {mesh: {max_triangles: 1000}}
            out: dict[str, dict[str, Any]] = {}
            for k, x in v.items():
                if isinstance(x, dict) and "." not in str(k):
                    out.setdefault(str(k).strip(), {}).update({str(f).strip(): _value(y) for f, y in x.items()})
                else:
                    for stage, vals in option_map({k: _value(x)}).items():
                        out.setdefault(stage, {}).update(vals)
            return out
        return parse_options(_items(v, text, r";"))
    except ValueError as e:
        raise _FieldError(str(e)) from None


def _value(x: Any) -> Any:
    if isinstance(x, str):
        return parse_value(x) if x.strip()[:1] in "[{" else x
    if isinstance(x, (list, tuple)):
        return tuple(x)
    if isinstance(x, dict) or x is None:
        raise _FieldError(f"an option value must be a number, text, true/false or a list, got {_kind(x)}")
    return x


FIELDS: dict[str, Callable[[Any, bool], Any]] = {
    "name": _text,
    "prompt": _text,
    "spec": _text,
    "image": _text,
    "panorama": _text,
    "depth": _text,
    "seed": _int,
    "preset": _text,
    "eye_height": _float,
    "until": _text,
    "max_splats": _int,
    "engine": _text,
    "format": _formats,
    "backend": _backend,
    "set": _set,
    "model": _model,
    "gpu": _gpu,
    "timeout": _seconds,
}
if "fov" in _REQUEST_FIELDS:
    FIELDS["fov"] = _seconds  # horizontal field of view of `image`, degrees (--fov)
"""Job fields and their converters (documented in docs/batch.md)."""

ALIASES = {"formats": "format", "backends": "backend", "models": "model", "eye-height": "eye_height"}
ALIASES["max-splats"] = "max_splats"

_NOT_JOB_FIELDS = {
    "out": "a job's folder is ROOT/NAME (give ROOT with -o)",
    "o": "a job's folder is ROOT/NAME (give ROOT with -o)",
    "from": "a batch resumes by itself; delete a job's folder to rebuild it",
    "force": "a batch resumes by itself; delete a job's folder to rebuild it",
    "explain": "use 'worldgen generate --explain' on one prompt",
}
_MERGED = ("backend", "set", "model")


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing"}.get(type(v), type(v).__name__)


# ---------------------------------------------------------------------------------------------
# Reading the three formats: -> (defaults, [(line, {field: (line, value)})], text_values)
# ---------------------------------------------------------------------------------------------

Entry = tuple[int, dict[str, tuple[int, Any]]]


def _read_yaml(data: str, label: str) -> tuple[Entry | None, list[Entry]]:
    import yaml

    # libyaml's parser when present (about 10x faster on big files); the same safe constructor either way.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(data)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None, []
            _check_expansion(node, label)
            value = loader.construct_document(node)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else 0
            raise JobFileError([f"{label}:{line}: not valid YAML: {e.problem or e.context}"]) from None
        except yaml.YAMLError as e:
            raise JobFileError([f"{label}: not valid YAML: {str(e).splitlines()[0]}"]) from None
        except RecursionError:
            raise JobFileError([f"{label}: the YAML nests too deeply; flatten it"]) from None
    finally:
        loader.dispose()
    return _split(value, node, label)


def _check_expansion(root: Any, label: str) -> None:
    """Count the values a YAML node graph expands to (aliases counted at every use), so a small
    file of nested aliases cannot expand into billions of values when the jobs are read."""
    import yaml

    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Any) -> int:
        nid = id(node)
        if nid in sizes:
            return sizes[nid]
        if nid in busy:
            raise JobFileError([f"{label}:{node.start_mark.line + 1}: a YAML alias refers to itself; remove the cycle"])
        busy.add(nid)
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(v) for v in node.value)
        else:
            n = 1
        busy.discard(nid)
        if n > MAX_VALUES:
            raise JobFileError(
                [
                    f"{label}:{node.start_mark.line + 1}: the YAML expands to more than {MAX_VALUES:,} values "
                    "through aliases (an alias bomb?); write the jobs out or split the file"
                ]
            )
        sizes[nid] = n
        return n

    size(root)


def _split(value: Any, node: Any, label: str) -> tuple[Entry | None, list[Entry]]:
    import yaml

    def entry(v: Any, n: Any) -> Entry:
        lines = {}
        if isinstance(n, yaml.MappingNode):
            lines = {k.value: k.start_mark.line + 1 for k, _ in n.value if isinstance(k, yaml.ScalarNode)}
        line = n.start_mark.line + 1
        if not isinstance(v, dict):
            raise JobFileError([f"{label}:{line}: a job must be a mapping of fields, got {_kind(v)}"])
        return line, {str(k): (lines.get(str(k), line), x) for k, x in v.items()}

    if isinstance(value, list):
        return None, [entry(v, n) for v, n in zip(value, node.value)]
    if not isinstance(value, dict):
        raise JobFileError([f"{label}:1: a job file holds a list of jobs or {{defaults: ..., jobs: [...]}}"])
    nodes = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    unknown = sorted(str(k) for k in value if k not in ("defaults", "jobs"))
    if unknown:
        line = next((k.start_mark.line + 1 for k, _ in node.value if k.value == unknown[0]), 1)
        raise JobFileError([f"{label}:{line}: unknown top-level key {unknown[0]!r}; use 'defaults' and 'jobs'"])
    jobs = value.get("jobs")
    if not isinstance(jobs, list):
        line = nodes["jobs"].start_mark.line + 1 if "jobs" in nodes else 1
        raise JobFileError([f"{label}:{line}: 'jobs' must be a list of jobs"])
    defaults = entry(value["defaults"], nodes["defaults"]) if value.get("defaults") is not None else None
    return defaults, [entry(v, n) for v, n in zip(jobs, nodes["jobs"].value)]


def _read_jsonl(data: str, label: str) -> tuple[Entry | None, list[Entry]]:
    defaults: Entry | None = None
    jobs: list[Entry] = []
    errors: list[str] = []
    for i, raw in enumerate(data.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            v = json.loads(raw)
        except ValueError as e:
            errors.append(f"{label}:{i}: not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(v, dict):
            errors.append(f"{label}:{i}: each line must be a JSON object (one job), got {_kind(v)}")
        elif set(v) == {"defaults"}:
            if defaults is not None or not isinstance(v["defaults"], dict):
                errors.append(f'{label}:{i}: give one defaults line, {{"defaults": {{...}}}}')
            else:
                defaults = (i, {k: (i, x) for k, x in v["defaults"].items()})
        else:
            jobs.append((i, {k: (i, x) for k, x in v.items()}))
    if errors:
        raise JobFileError(errors)
    return defaults, jobs


def _read_csv(data: str, label: str) -> tuple[Entry | None, list[Entry]]:
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return None, []
    except csv.Error as e:
        raise JobFileError([f"{label}:1: not valid CSV ({e})"]) from None
    header = [h.strip() for h in header]
    jobs: list[Entry] = []
    line = reader.line_num + 1
    try:
        for row in reader:
            if any(c.strip() for c in row):
                if len(row) > len(header):
                    raise JobFileError([f"{label}:{line}: {len(row)} cells but {len(header)} columns in the header"])
                jobs.append((line, {h: (line, c) for h, c in zip(header, row) if c.strip()}))
            line = reader.line_num + 1
    except csv.Error as e:
        raise JobFileError([f"{label}:{line}: not valid CSV ({e})"]) from None
    return None, jobs


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def load_jobs(path: str | os.PathLike) -> list[Job]:
    """Read and check a whole job file; JobFileError (an InputError) lists every problem found.

    The format follows the suffix: ``.yaml``/``.yml``, ``.jsonl``/``.ndjson``, ``.csv``.
    """
    p = Path(path)
    label = str(path)
    suffix = p.suffix.lower()
    readers = {".yaml": _read_yaml, ".yml": _read_yaml, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl}
    readers[".csv"] = _read_csv
    if suffix not in readers:
        raise InputError(f"job file {label!r} must end in .yaml, .yml, .jsonl or .csv (found {suffix or 'none'})")
    try:
        if p.stat().st_size > MAX_BYTES:
            raise InputError(f"job file {label!r} is larger than {MAX_BYTES >> 20} MB; split it")
        data = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"job file {label!r} does not exist; check the path") from None
    except UnicodeDecodeError as e:
        raise InputError(f"job file {label!r} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise InputError(f"cannot read job file {label!r} ({e.strerror})") from None
    defaults, entries = readers[suffix](data, label)
    if not entries:
        raise JobFileError([f"{label}: holds no jobs"])
    return _validate(defaults, entries, label, p.parent.resolve(), text=suffix == ".csv")


def _validate(defaults: Entry | None, entries: list[Entry], label: str, base: Path, text: bool) -> list[Job]:
    errors: list[str] = []
    # worldgen.toml (models, backend option defaults) applies to every job as it does to `generate`;
    # the driver reads it once and hands the result to the workers with each job.
    user_config = load_user_config()
    base_values: dict[str, tuple[int, Any]] = {}
    if defaults is not None:
        dline, raw = defaults
        if "name" in raw:
            errors.append(f"{label}:{raw['name'][0]}: defaults: field 'name': every job names itself; remove it")
        base_values = _convert(raw, text, lambda ln, f, m: errors.append(f"{label}:{ln}: defaults: field {f!r}: {m}"))
        base_values = {k: v for k, v in base_values.items() if v[1] is not None}
    jobs: list[Job] = []
    folders: dict[str, tuple[str, int]] = {}
    checked: dict[str, None] = {}
    for line, raw in entries:
        name_v = raw.get("name", (line, None))[1]
        who = f"job {name_v!r}" if isinstance(name_v, (str, int)) and not isinstance(name_v, bool) else "job"

        def err(ln: int, fld: str | None, msg: str, who: str = who) -> None:
            errors.append(f"{label}:{ln}: {who}: " + (f"field {fld!r}: " if fld else "") + msg)

        values = _convert(raw, text, err)
        if "name" not in raw:
            err(line, "name", "missing; every job needs a name (its folder under ROOT)")
            continue
        if values.get("name", (0, None))[1] is None:
            err(line, "name", "is empty; every job needs a name (its folder under ROOT)")
            continue
        merged = dict(base_values)
        for k, (ln, v) in values.items():
            if v is None:
                merged.pop(k, None)
                continue
            if k in _MERGED and k in merged:
                old = merged[k][1]
                v = {s: {**old.get(s, {}), **v.get(s, {})} for s in {*old, *v}} if k == "set" else {**old, **v}
            merged[k] = (ln, v)
        name = merged["name"][1]
        try:
            folder = folder_name(name)
        except ValueError as e:
            err(merged["name"][0], "name", str(e))
            continue
        other = folders.get(folder.lower())
        if other is not None:
            err(
                merged["name"][0],
                "name",
                f"uses the same folder {folder!r} as job {other[0]!r} on line {other[1]} "
                "(names must differ in more than case and punctuation); rename one",
            )
            continue
        folders[folder.lower()] = (name, line)
        job = _make_job(name, folder, f"{label}:{line}", merged, base, err)
        if job is None:
            continue
        # check_request costs the same for every job with equal options: check each combination once
        # (file paths are checked per job above).
        sig = json.dumps([job.request.preset, bool(job.request.panorama), bool(job.request.depth),
                          job.until, job.backends, job.options, bool(job.request.image), bool(job.request.prompt),
                          bool(job.request.spec)], default=list,
                         sort_keys=True)  # fmt: skip
        try:
            if sig not in checked:
                check_request(job.request, job.run_options())
                _check_chosen_options(job)
                checked[sig] = None
        except InputError as e:
            fld = getattr(e, "field", None)
            err(merged[fld][0] if fld in merged else line, fld, str(e).splitlines()[0])
            continue
        if "model" in merged or user_config.models or user_config.backend_options:
            try:
                job = _with_models(job, merged.get("model", (0, {}))[1], base, user_config)
            except InputError as e:
                err(merged.get("model", (line,))[0], "model" if "model" in merged else None, str(e).splitlines()[0])
                continue
        jobs.append(job)
    if errors:
        raise JobFileError(errors)
    return jobs


def _check_chosen_options(job: Job) -> None:
    """Every option must be one of the backend that will run its stage.

    ``check_request`` accepts an option that some backend of the stage has; a batch is stricter,
    because a ``defaults`` block easily hands, say, ``panorama.width`` (the procedural backend's)
    to a job that reads a panorama file, and that job would fail only when it runs.
    """
    produced = {"given_depth"} if (job.request.depth or not job.request.panorama) else set()
    for stage, values in job.options.items():
        if stage in job.backends:
            continue  # check_request built this backend's config already
        try:
            backend = choose_backend(stage, job.request, produced, job.backends)
        except InputError:
            continue  # the run reports it, as `generate` does
        if backend is None:
            continue
        try:
            backend.make_config(job.request.preset, values)
        except InputError as e:
            shorthand = stage == "export" and set(values) & {"engine", "formats"}
            e.field = None if shorthand else "set"
            raise


def _with_models(job: Job, given: Mapping[str, str], base: Path, user_config: UserConfig) -> Job:
    """The job with its models resolved (the job's ``model`` entries over worldgen.toml's) and
    worldgen.toml's backend option defaults; a relative model folder is read from the job file's folder."""
    items = []
    for role, source in given.items():
        local = Path(source).expanduser()
        if not local.is_absolute() and (base / local).exists():
            source = str(base / local)
        items.append(f"{role}={source}")
    specs = resolve_models(items, user_config)
    models = {}
    for role, spec in specs.items():
        d = dataclasses.asdict(spec)
        d.pop("role", None)
        models[role] = json.loads(json.dumps(d, default=list))
    defaults = json.loads(json.dumps(user_config.backend_options, default=list))
    job = dataclasses.replace(job, models=models, defaults=defaults)
    check_request(job.request, job.run_options())
    return job


def _convert(raw: Mapping[str, tuple[int, Any]], text: bool, err: Callable[[int, str, str], None]) -> dict:
    out: dict[str, tuple[int, Any]] = {}
    for key, (ln, v) in raw.items():
        fld = ALIASES.get(key, key)
        if fld in _NOT_JOB_FIELDS:
            err(ln, key, f"is not a job field: {_NOT_JOB_FIELDS[fld]}")
            continue
        conv = FIELDS.get(fld)
        if conv is None:
            err(ln, key, f"unknown; job fields are {', '.join(FIELDS)}")
            continue
        if v is None:
            out[fld] = (ln, None)  # empty: not given (in a job: also drops the default's value)
            continue
        try:
            out[fld] = (ln, conv(v, text))
        except _FieldError as e:
            err(ln, key, str(e))
    return out


def _make_job(
    name: str, folder: str, source: str, merged: dict, base: Path, err: Callable[[int, str | None, str], None]
) -> Job | None:
    get = {k: v for k, (_, v) in merged.items()}
    ok = True
    paths: dict[str, str] = {}
    for k in PATH_FIELDS:
        if k in get:
            ln = merged[k][0]
            p = Path(get[k]).expanduser()
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                err(ln, k, f"file {get[k]!r} does not exist (paths are relative to the job file's folder)")
                ok = False
            paths[k] = str(p)
    if not any(k in get for k in ("prompt", "spec", "image", "panorama")):
        err(merged["name"][0], None, "no input: give prompt, spec, image or panorama")
        ok = False
    if "until" in get and get["until"] not in STAGES:
        err(merged["until"][0], "until", f"unknown stage {get['until']!r}; stages are {', '.join(STAGES)}")
        ok = False
    if "preset" in get and get["preset"] not in PRESETS:
        err(merged["preset"][0], "preset", f"unknown preset {get['preset']!r}; choose one of {', '.join(PRESETS)}")
        ok = False
    if "seed" in get and not 0 <= get["seed"] < 2**63:
        err(merged["seed"][0], "seed", f"{get['seed']} must lie in [0, 2^63)")
        ok = False
    if "eye_height" in get and not 0.0 < get["eye_height"] < 1000.0:
        err(merged["eye_height"][0], "eye_height", f"{get['eye_height']} m must lie in (0, 1000)")
        ok = False
    if not ok:
        return None
    options = {s: dict(v) for s, v in get.get("set", {}).items()}
    apply_shorthands(options, get.get("max_splats"), get.get("engine"), get.get("format"))
    request = Request(
        prompt=get.get("prompt"),
        image=paths.get("image"),
        panorama=paths.get("panorama"),
        depth=paths.get("depth"),
        spec=paths.get("spec"),
        seed=get.get("seed", 0),
        eye_height=get.get("eye_height", 1.6),
        preset=get.get("preset", "balanced"),
        **({"fov": get["fov"]} if "fov" in get else {}),
    )
    return Job(
        name=name,
        folder=folder,
        source=source,
        request=request,
        until=get.get("until", "export"),
        backends=get.get("backend", {}),
        options=options,
        gpu=get.get("gpu", "auto"),
        timeout=get.get("timeout"),
    )
