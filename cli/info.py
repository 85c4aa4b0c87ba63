"""`worldgen info` and `worldgen stages`: what this machine can run, and how the pipeline is built."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import platform
from importlib import metadata
from typing import Annotated

import typer
from rich.table import Table

from worldgen.errors import WorldgenError
from worldgen.models import ModelSpec, load_user_config, locate_model, require_safetensors, resolve_models
from worldgen.pipeline import STAGE_INPUTS
from worldgen.registry import STAGES, backends

from . import _console


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def info(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="ROLE=ID|PATH: also check this model (as for generate).", show_default=False
        ),
    ] = None,
) -> None:
    """Show Python, torch, CUDA, gsplat and open3d, which backends can run here, and the configured models."""
    import torch

    env = Table(title="environment", title_justify="left", show_header=False)
    env.add_column("what")
    env.add_column("value")
    env.add_row("worldgen", _version("worldgen"))
    env.add_row("python", platform.python_version())
    env.add_row("torch", torch.__version__)
    if torch.cuda.is_available():
        cuda = f"yes: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        cuda = "no (CPU build or no GPU visible)" if torch.version.cuda is None else "no GPU visible"
    env.add_row("CUDA", cuda)
    env.add_row("gsplat", _version("gsplat"))
    env.add_row("open3d", _open3d_status())
    env.add_row("usd-core", _version("usd-core"))
    rast = _rasterizer()
    if rast:
        env.add_row("splat rasterizer", rast)
    _console.out.print(env)

    table = Table(title="backends", title_justify="left")
    for col in ("stage", "backend", "runs here", "what it does"):
        table.add_column(col)
    for stage in STAGES:
        regs = backends(stage)
        if not regs:
            table.add_row(stage, "-", "[yellow]no backend installed[/]", "")
        for b in regs:
            why = b.unavailable()
            table.add_row(stage, b.name, "[green]yes[/]" if why is None else f"[red]no[/]: {why}", b.summary)
    _console.out.print(table)
    _models_table(model or [])


def _models_table(cli_items: list[str]) -> None:
    """The models configured (worldgen.toml, then --model), and whether each one loads (offline)."""
    user = load_user_config()
    models = resolve_models(cli_items, user)
    where = str(user.path) if user.path else "none (./worldgen.toml or ~/.config/worldgen/worldgen.toml)"
    table = Table(title=f"models (config: {where})", title_justify="left")
    for col in ("role", "source", "from", "loads"):
        table.add_column(col, overflow="fold")  # paths and ids whole, wrapped, never cut with "…"
    if not models:
        table.add_row("-", "none configured", "-", "give --model ROLE=ID|PATH or a \\[models] table in worldgen.toml")
    for role, spec in sorted(models.items()):
        table.add_row(role, spec.source, spec.origin, check_configured_model(spec))
    _console.out.print(table)


def check_configured_model(spec: ModelSpec) -> str:
    """'yes (backend)' when a backend that uses the role loads the model, else why not (one line)."""
    try:
        path = locate_model(spec)
        require_safetensors(path)
    except WorldgenError as e:
        return f"[red]no[/]: {e}"
    users = [b for stage in STAGES for b in backends(stage) if spec.role in b.models]
    checkers = [b for b in users if b.check_model is not None]
    if not checkers:
        names = ", ".join(f"{b.stage}/{b.name}" for b in users)
        return f"[yellow]found[/] at {path}; no backend here can test-load it" + (f" ({names})" if names else "")
    failures = []
    for b in checkers:
        why = b.unavailable() or _check_for_role(b, path, spec.role)
        if why is None:
            return f"[green]yes[/] ({b.stage}/{b.name}, {path})"
        failures.append(f"{b.stage}/{b.name}: {why}")
    return "[red]no[/]: " + "; ".join(failures)


def _check_for_role(backend, path, role: str) -> str | None:
    """The backend's load check for this role: a backend that takes several roles (the transformers
    depth backend: depth and segmentation) answers per role when its check_model takes ``role``; asked
    without it, a depth model configured as the segmentation model was reported as loading."""
    import inspect

    if "role" in inspect.signature(backend.check_model).parameters:
        return backend.check_model(path, role=role)
    return backend.check_model(path)


def _open3d_status() -> str:
    v = _version("open3d")
    if v == "not installed":
        return v
    try:
        importlib.import_module("open3d")
    except ImportError as e:  # typically libusb-1.0-0 missing
        return f"{v}, but it does not load: {e} (on Debian/Ubuntu: apt-get install libusb-1.0-0)"
    return v


def _rasterizer() -> str | None:
    if importlib.util.find_spec("worldgen.splats.rasterize") is None:
        return None
    from worldgen.splats.rasterize import select_rasterizer

    name, why = select_rasterizer()
    return f"{name} ({why})"


def stages() -> None:
    """List the stages in order, what each reads and writes, and their backends."""
    table = Table(title="pipeline: " + " -> ".join(STAGES), title_justify="left")
    for col in ("stage", "reads", "backends (options)"):
        table.add_column(col)
    for stage in STAGES:
        lines = []
        for b in backends(stage):
            fields = [f.name for f in dataclasses.fields(b.config)]
            lines.append(
                f"[bold]{b.name}[/] v{b.version}: {b.summary}"
                + (f"\n    options: {', '.join(fields)}" if fields else "")
            )
        table.add_row(stage, ", ".join(STAGE_INPUTS[stage]) or "the request", "\n".join(lines) or "none installed")
    _console.out.print(table)
    _console.out.print("Choose a backend with --backend STAGE=NAME; set an option with --set STAGE.FIELD=VALUE.")
