"""`worldgen view DIR`: explore a run's splats and mesh in the browser (viser).

Register in cli/main.py as::

    app.command("view")(view_command)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from . import _console
from ._logging import setup_logging
from ._options import VerboseOpt


def view_command(
    run_dir: Annotated[
        Path, typer.Argument(help="A run folder (holds gaussians.npz and/or mesh.npz).", show_default=False)
    ],
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on; 0.0.0.0 exposes the viewer to the network.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="TCP port (the next free one if taken).")
    ] = 8080,
    max_splats: Annotated[
        int, typer.Option("--max-splats", min=1, help="Splats sent to the browser at most (a subset beyond).")
    ] = 1_000_000,
    show: Annotated[
        str | None,
        typer.Option("--show", help="What to show first: splats or mesh (a toggle in the page).", show_default=False),
    ] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Serve a web viewer of the world: splats and mesh (a toggle), walk and orbit; Ctrl-C stops it."""
    setup_logging(verbose, False)
    from worldgen.report.viewer import start_viewer

    t0 = time.perf_counter()
    viewer = start_viewer(run_dir, host=host, port=port, max_splats=max_splats, show=show)
    _console.err.print(f"viewer ready in {time.perf_counter() - t0:.1f} s; open it in a browser (Ctrl-C stops it):")
    _console.out.print(viewer.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
