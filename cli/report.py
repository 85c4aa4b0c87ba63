"""`worldgen report DIR`: rebuild a run's report.html, or a batch's index.html.

Register in cli/main.py as::

    app.command("report")(report_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worldgen.errors import InputError

from . import _console
from ._logging import setup_logging
from ._options import QuietOpt, VerboseOpt


def report_command(
    folder: Annotated[
        Path, typer.Argument(help="A run folder (manifest.json) or a batch root (batch.json).", show_default=False)
    ],
    validate: Annotated[
        bool | None,
        typer.Option(
            "--validate/--no-validate",
            help="Run the asset validators on files without a stored result (default: yes for a run, no for a batch).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo the previews even when they are current.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Write report.html for a run (previews, stages, assets, quality) or index.html for a batch."""
    setup_logging(verbose, quiet)
    from worldgen.report.batch import BATCH_JSON, write_batch_index
    from worldgen.report.html import write_report

    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder; give a run folder or a batch root")
    if (folder / BATCH_JSON).is_file():
        out = write_batch_index(folder, validate=bool(validate))
    else:
        out = write_report(folder, validate=validate is not False, force=force)
    _console.out.print(str(out))
