"""Small previews for the test runs whose previews no test looks at (conftest's small_previews
fixture, and _cli_child for the signal tests).

The sizes of test_report_html's "small" config: 5 views of 64x40 and a 4-frame 128x48
fly-through instead of 256x160 views and 24 frames of 448x128, whose GIF quantisation alone was
most of a small run's CPU time (64x32 walk-radius run: ~8.7 s CPU per generate, load 12).
"""

from __future__ import annotations

SMALL_PREVIEWS = dict(view_width=64, view_height=40, frames=4, frame_width=64, frame_height=48)


def small_make_previews():
    """(worldgen.report.html, a make_previews that ignores the config it is given and uses the
    small one): set the second as the first's ``make_previews``, which write_report calls."""
    from worldgen.report import PreviewConfig, html

    small = PreviewConfig(**SMALL_PREVIEWS)
    real = html.make_previews

    def make_previews(run, config=None, force=False):
        return real(run, small, force=force)

    return html, make_previews
