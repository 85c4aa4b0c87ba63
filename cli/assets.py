"""`worldgen export` and `worldgen validate`: re-export a finished run; validate its assets.

Register in cli/main.py as::

    app.command("export")(export_command)
    app.command("validate")(validate_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from worldgen.exporters import ENGINES, available_formats, export_run, validate_folder

from . import _console

_FORMAT_HELP = "Format to write; repeat for several. Default: the engine's set. Choices: "
_ENGINE_HELP = "Target engine preset (formats, budgets, names). Choices: "


def export_command(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run folder (holds mesh.npz and/or gaussians.npz).", show_default=False)
    ],
    format: Annotated[
        list[str] | None,
        typer.Option(  # noqa: A002  (the flag is --format)
            "--format", "-f", help=_FORMAT_HELP + ", ".join(available_formats()), show_default=False
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", "-e", help=_ENGINE_HELP + ", ".join(ENGINES), show_default=False)
    ] = None,
    max_texture_size: Annotated[
        int | None,
        typer.Option(help="Largest texture side in pixels (power of two); default: the engine's.", show_default=False),
    ] = None,
    texture_format: Annotated[
        str | None, typer.Option(help="Texture encoding: jpeg or png; default jpeg.", show_default=False)
    ] = None,
    spz_version: Annotated[
        int | None,
        typer.Option(help="SPZ version: 2 (Unity aras-p, Spark) or 3 (Spark, splat-transform).", show_default=False),
    ] = None,
    far_plane: Annotated[
        float | None,
        typer.Option(
            help="Far clip of the target camera, metres: the sky is placed and distant geometry folded inside it "
            "(0 = no limit); default: the engine's.",
            show_default=False,
        ),
    ] = None,
    collision: Annotated[
        str | None,
        typer.Option(
            help="Collision: node (physics shape in the world file), file (collision.glb) or none.", show_default=False
        ),
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Run the validators on the written files.")
    ] = False,
) -> None:
    """Re-export a finished run's mesh and splats (no recomputation) and print the files written."""
    written, report = export_run(
        run_dir,
        format or None,
        engine,
        max_texture_size=max_texture_size,
        texture_format=texture_format,
        spz_version=spz_version,
        far_plane=far_plane,
        collision=collision,
    )
    for name, why in report.get("skipped", {}).items():
        _console.err.print(f"[yellow]skipped {name}: {why}[/]")
    for p in written:
        _console.out.print(str(p))
    if validate:
        _report(validate_folder(run_dir))


def validate_command(
    folder: Annotated[Path, typer.Argument(help="Folder holding exported assets (a run folder).", show_default=False)],
) -> None:
    """Run the glTF, USD and splat validators on every asset in FOLDER; exit 1 on any error."""
    _report(validate_folder(folder))


def _report(findings) -> None:
    table = Table(title="validation", title_justify="left")
    for col in ("file", "validator", "errors", "warnings", "counts", "first problem"):
        table.add_column(col)
    failed = skipped = 0
    for f in findings:
        counts = ", ".join(f"{k} {v}" for k, v in f.counts.items())
        first = f.skipped and f"skipped: {f.skipped}" or (f.messages[0] if f.messages else "")
        style = "red" if f.errors else ("yellow" if f.skipped or f.warnings else "green")
        table.add_row(Path(f.file).name, f.validator, f"[{style}]{f.errors}[/]", str(f.warnings), counts, first[:120])
        failed += f.errors > 0
        skipped += bool(f.skipped)
    _console.out.print(table)
    if skipped:
        _console.err.print(
            f"[yellow]{skipped} validator run(s) skipped: install them with `npm ci` and `pip install usd-validation-nvidia==1.22.0`[/]"
        )
    if failed:
        _console.err.print(f"[red]{failed} asset check(s) failed[/]")
        raise typer.Exit(1)
