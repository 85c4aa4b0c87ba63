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


@pytest.fixture
def small_previews(monkeypatch):
    """`worldgen generate` in this process writes its report with small previews (_previews.py).

    For tests that check a run's stages and never read its previews: the same preview code still
    runs on their worlds (an exception in it still fails the test), only smaller. The report
    tests (test_report_html, tiny_run) keep the default sizes."""
    from _previews import small_make_previews

    html, make_previews = small_make_previews()
    monkeypatch.setattr(html, "make_previews", make_previews)
