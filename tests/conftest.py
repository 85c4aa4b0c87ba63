"""Shared fixtures. Data is generated, seeded, on the CPU; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny procedural run (256x128, fast preset) made with `worldgen generate`, which also
    writes its previews and report.html; shared by the report and viewer tests. Read-only: copy it
    before changing anything."""
    from worldgen.cli.main import main

    out = tmp_path_factory.mktemp("tiny_run") / "forest"
    code = main(
        ["generate", "a pine forest by a lake", "-o", str(out), "--preset", "fast", "--set", "panorama.width=256", "-q"]
    )
    assert code == 0
    return out


# Previews at the sizes of test_report_html's "small" config: 5 views of 64x40 and a 4-frame
# 128x48 fly-through instead of 256x160 views and 24 frames of 448x128 (whose GIF quantisation
# alone was most of a small run's CPU time: 64x32 walk-radius run, ~8.7 s CPU per generate).
SMALL_PREVIEWS = dict(view_width=64, view_height=40, frames=4, frame_width=64, frame_height=48)


@pytest.fixture
def small_previews(monkeypatch):
    """`worldgen generate` in this process writes its report with small previews.

    For tests that check a run's stages and never read its previews: the same preview code still
    runs on their worlds (an exception in it still fails the test), only smaller. The report
    tests (test_report_html, tiny_run) keep the default sizes."""
    from worldgen.report import PreviewConfig, html

    small = PreviewConfig(**SMALL_PREVIEWS)
    real = html.make_previews
    monkeypatch.setattr(html, "make_previews", lambda run, config=None, force=False: real(run, small, force=force))
