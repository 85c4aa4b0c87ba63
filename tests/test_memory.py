"""Memory guard: estimates recorded next to measured peaks; scale down with a note, or refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import worldgen._resources as res
from worldgen import memory
from worldgen.cli.main import main
from worldgen.io import encode_png
from worldgen.pipeline import MANIFEST, RunOptions, run_pipeline
from worldgen.registry import Request

# generate's previews at small sizes: no test here reads them (conftest.small_previews)
pytestmark = pytest.mark.usefixtures("small_previews")


@pytest.fixture
def files(tmp_path):
    yy, xx = np.mgrid[0:32, 0:64]
    (tmp_path / "pano.png").write_bytes(encode_png(np.stack([xx * 4, yy * 8, xx + yy], -1).astype(np.uint8)))
    d = (3.0 + np.cos(xx / 5.0)).astype(np.float32)
    d[:4] = np.inf
    np.save(tmp_path / "depth.npy", d)
    return tmp_path


def test_estimates_scale_with_the_work():
    cfg = type("C", (), {"grid_width": 512, "refine_budget": 1.3})()
    small = memory.estimate_mb("gaussians", "init", None, 1024 * 512)
    big = memory.estimate_mb("gaussians", "init", None, 2048 * 1024)
    assert 0 < small < big and big == pytest.approx(4 * small, rel=0.01)
    # the sheet scales with its grid, which grid_width caps
    assert memory.estimate_mb("mesh", "sheet", cfg, 2048 * 1024) == memory.estimate_mb("mesh", "sheet", cfg, 1024 * 512)
    assert memory.estimate_mb("mesh", "no-such-backend", cfg, 100) is None


def test_manifest_records_estimate_and_peak(files):
    req = Request(panorama=str(files / "pano.png"), depth=str(files / "depth.npy"), preset="fast")
    r = run_pipeline(req, files / "out", RunOptions(until="mesh", backends={"gaussians": "init"}))
    for stage in ("panorama", "depth", "gaussians", "mesh"):
        mem = r.manifest["stages"][stage]["memory"]
        assert mem["estimate_mb"] >= mem["start_mb"] > 0 and mem["peak_mb"] > 0 and mem["limit_mb"] > 0


def _fixed_memory(monkeypatch, rss_mb: float) -> None:
    # A known resident set and no system limit: the guard's decisions become exact.
    monkeypatch.setattr(res, "current_rss", lambda: int(rss_mb * memory.MB))
    monkeypatch.setattr(res, "available_memory", lambda: None)


def test_panorama_scaled_down_with_a_note_to_fit(tmp_path, monkeypatch, capsys):
    Image.new("RGB", (2048, 1024), (40, 90, 160)).save(tmp_path / "big.png")
    _fixed_memory(monkeypatch, 100)
    # fast preset: working width 2048, whose gaussians (init) need ~380 MB; 1024 needs ~95 MB.
    code = main(
        ["generate", "--panorama", str(tmp_path / "big.png"), "--preset", "fast", "--backend", "gaussians=init"]
        + ["--until", "gaussians", "--max-memory", "0.35", "-q", "-o", str(tmp_path / "out")]
    )
    assert code == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert "2048 -> 1024" in m["stages"]["panorama"]["memory"]["note"]
    assert m["stages"]["panorama"]["config"]["max_width"] == 1024
    with Image.open(tmp_path / "out" / "panorama.png") as im:
        assert im.size == (1024, 512)


def test_refused_in_one_line_when_nothing_fits(tmp_path, monkeypatch, capsys):
    _fixed_memory(monkeypatch, 100)
    code = main(["generate", "a pine forest", "--preset", "fast", "--max-memory", "0.2", "-o", str(tmp_path / "o")])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1
    assert "panorama stage (procedural) would need about" in lines[0] and "--max-memory" in lines[0]
    assert not (tmp_path / "o" / "panorama.png").exists()


def test_a_partial_panorama_is_costed_at_its_full_equirect(tmp_path):
    # a 360° x 45° strip of a 4096x2048 equirect: the stage keeps the full equirect, not the strip
    from _gpano import gpano_xmp, save_with_xmp

    from worldgen.stages.panorama import FileConfig

    path = tmp_path / "strip.jpg"
    save_with_xmp(path, np.zeros((512, 4096, 3), np.uint8), gpano_xmp(full=(4096, 2048), top=768, size=(4096, 512)))
    req = Request(panorama=str(path))
    px = memory.panorama_pixels("panorama", "file", FileConfig(), req, None)
    assert px == 4096 * 2048
    assert memory.estimate_mb("panorama", "file", FileConfig(), px) > 34 * 4096 * 2048 / 2**20
