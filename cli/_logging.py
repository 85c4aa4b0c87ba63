"""Logging set-up for the CLI: library modules log, the CLI decides what is shown."""

import logging

from rich.logging import RichHandler

from . import _console


def setup_logging(verbose: int, quiet: bool = False) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(
        level=level,
        format="%(message)s",
        force=True,
        handlers=[RichHandler(console=_console.err, show_path=False, show_time=False)],
    )
