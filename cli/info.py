"""`worldgen info` and `worldgen stages`: what this machine can run, and how the pipeline is built."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import platform
from importlib import metadata

from rich.table import Table

from worldgen.pipeline import STAGE_INPUTS
from worldgen.registry import STAGES, backends

from . import _console


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def info() -> None:
    """Show Python, torch, CUDA, gsplat and open3d, and which backends can run here (and why not)."""
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
