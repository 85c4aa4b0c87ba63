"""Runs the `worldgen` CLI in a child process, one stage slowed down, for the signal tests.

Usage: python _cli_child.py WORLDGEN-ARGS...
Environment: WG_SLOW_STAGE (a stage whose backend sleeps SECONDS before it runs, in slices of
0.05 s), WG_SLOW_SECONDS, WG_MARK (a file written when the sleep starts), WG_C_CALL=1 (a long numpy sort, one C call, before the sleep; WG_MARK.c marks its start),
WG_STUBBORN=1 (the sleep swallows the stop exception and sleeps on,
like a C call that does not return: only the CLI's watchdog can end the run). The backend keeps
its name and config, so cache keys match an ordinary run's and a resumed run is comparable.
The report's previews are the small ones of _previews.py, as the signal test's in-process resume
makes them (their bytes are compared too).
"""

import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's cli package

from cli.main import main  # noqa: E402
from worldgen.registry import backends, register_backend  # noqa: E402


def _slowed(run):
    def slow_run(ctx):
        end = time.monotonic() + float(os.environ.get("WG_SLOW_SECONDS", "30"))
        ctx.progress(0.0, "sleeping")
        if os.environ.get("WG_MARK"):
            with open(os.environ["WG_MARK"], "w") as f:
                f.write(ctx.stage)
        if os.environ.get("WG_C_CALL") == "1":
            import numpy as np

            big = np.random.default_rng(0).random(40_000_000)
            with open(os.environ["WG_MARK"] + ".c", "w") as f:
                f.write("in C")
            np.sort(big)  # seconds inside one C call: the handler cannot run until it returns
            np.sort(big[::-1].copy())
        while time.monotonic() < end:
            try:
                time.sleep(0.05)
            except BaseException:
                if os.environ.get("WG_STUBBORN") != "1":
                    raise
        return run(ctx)

    return slow_run


if __name__ == "__main__":
    from _previews import small_make_previews

    html, make_previews = small_make_previews()
    html.make_previews = make_previews
    stage = os.environ.get("WG_SLOW_STAGE")
    if stage:
        for b in backends(stage):
            register_backend(dataclasses.replace(b, run=_slowed(b.run)))
    sys.exit(main(sys.argv[1:]))
