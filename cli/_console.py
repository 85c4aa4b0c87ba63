"""Consoles shared by every command: results on stdout, diagnostics and progress on stderr."""

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
