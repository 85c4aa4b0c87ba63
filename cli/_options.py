"""Option aliases shared by commands, so a flag reads the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder of the run.", show_default=False)]
SeedOpt = Annotated[
    int, typer.Option("--seed", min=0, help="Random seed; the same inputs and seed give the same bytes.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the output folder (for scripts).")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")]
