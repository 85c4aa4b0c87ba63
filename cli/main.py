"""The `worldgen` command: composes the command modules and owns exit codes.

Exit codes: 0 success; 2 a user mistake (bad input, bad option: the message names the fix);
1 any other worldgen error. Tracebacks only with WORLDGEN_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from worldgen.errors import InputError, WorldgenError

from . import _console
from ._signals import Interrupted, announce, stop_on_signals
from .assets import export_command, validate_command
from .batch import batch
from .generate import generate
from .info import info, stages
from .report import report_command
from .view import view_command

app = typer.Typer(
    name="worldgen",
    help="Turn a text prompt, a photo or a 360° panorama into an engine-ready 3D world.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
app.command(epilog="Example: worldgen generate 'snowy mountains at sunset' -o out/mountains")(generate)
app.command("export")(export_command)
app.command("validate")(validate_command)
app.command()(info)
app.command()(stages)
app.command("report")(report_command)
app.command("view")(view_command)
app.command(epilog="Example: worldgen batch jobs.yaml -o out/batch --workers 2")(batch)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    code = _run(argv)
    if argv is None:
        sys.exit(code)
    return code


# typer >= 0.24 vendors click; take the exception classes from typer itself so both layouts work.
_ClickException = sys.modules[typer.BadParameter.__module__].ClickException


RESUME_HINT = "run the same command again to resume (finished stages are reused)"


# Commands that own Ctrl-C: for the viewer it is the normal way to stop serving (exit 0), and a
# batch stops its workers and prints its own resume line. Every other command computes into a
# folder and stops through stop_on_signals.
OWN_SIGNALS = frozenset({"view", "batch"})


def _run(argv: list[str] | None) -> int:
    if _command_name(argv) in OWN_SIGNALS:
        return _dispatch(argv)
    try:
        with stop_on_signals(RESUME_HINT):
            return _dispatch(argv)
    except Interrupted as e:  # raised by the handler between bytecodes, possibly late in unwinding
        announce(e.signum, RESUME_HINT)
        return e.exit_code


def _dispatch(argv: list[str] | None) -> int:
    debug = os.environ.get("WORLDGEN_DEBUG") == "1"
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="worldgen")
        return rv if isinstance(rv, int) else 0
    except Interrupted as e:
        announce(e.signum, RESUME_HINT)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _console.err.print("[red]aborted[/]")
        return 130
    except _ClickException as e:
        # One line, like every other user mistake, instead of click's usage block.
        cmd = f"worldgen {argv_cmd} " if (argv_cmd := _command_name(argv)) else "worldgen "
        _console.err.print(f"[bold red]error:[/] {escape(e.format_message())} (see '{cmd}--help')", soft_wrap=True)
        return e.exit_code
    except WorldgenError as e:
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        # escaped: Rich took "[models]" in a message for markup and dropped it (found as a new user)
        _console.err.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
        return 2 if isinstance(e, InputError) else 1
    except KeyboardInterrupt:  # SIGINT outside stop_on_signals (e.g. a library's own handler)
        announce(2, RESUME_HINT)
        return 130


def _command_name(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    known = {c.name or c.callback.__name__ for c in app.registered_commands}
    first = next((a for a in args if not a.startswith("-")), "")
    return first if first in known else ""
