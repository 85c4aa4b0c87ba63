"""report.html per run, previews and `worldgen report`, checked in headless Chromium."""

from __future__ import annotations

import json
import shutil

import numpy as np
from _chromium import resembles, screenshot
from PIL import Image

from worldgen.cli.main import main
from worldgen.report import PreviewConfig, make_previews
from worldgen.report.html import write_report


def test_generate_leaves_previews_and_report(tiny_run):
    for name in ("preview.png", "flythrough.gif", "flythrough.mp4", "previews.json", "report.html"):
        assert (tiny_run / name).is_file(), name
    rec = json.loads((tiny_run / "previews.json").read_text())
    q = rec["quality"]
    assert q["truth"] == "procedural"
    assert [v["distance_m"] for v in q["views"]] == [0.0, 0.5, 0.5, 1.0, 1.0]
    for what in ("splats", "mesh"):
        for dist in ("0 m", "0.5 m", "1 m"):
            s = q["summary"][what][dist]
            assert 8.0 < s["psnr_db"] < 60.0 and 0.0 <= s["holes"] < 0.5
    # One splat per pixel plus the hidden-layer and backing splats (every preset exports both).
    g = json.loads((tiny_run / "manifest.json").read_text())["stages"]["gaussians"]["report"]
    assert g["n_gaussians_init"] == 256 * 128 and g["n_gaussians_backfill"] > 0
    extra = g["n_gaussians_backfill"] + g["n_gaussians_backing"]
    assert q["counts"]["splats"] == g["n_gaussians_out"] == 256 * 128 + extra
    assert q["counts"]["triangles"]["world"] > 0
    gif = Image.open(tiny_run / "flythrough.gif")
    assert gif.n_frames == PreviewConfig().frames
    assert (tiny_run / "flythrough.mp4").read_bytes()[4:8] == b"ftyp"
    page = (tiny_run / "report.html").read_text()
    for text in ("a pine forest by a lake", "SceneSpec", "gaussians", "refine", "peak memory", "world.glb", "PSNR"):
        assert text in page, text
    assert "not validated" in page  # generate leaves the slow validators to `worldgen report`


def test_report_page_shows_the_world_in_chromium(tiny_run, tmp_path):
    shot = screenshot((tiny_run / "report.html").as_uri(), tmp_path / "report.png", size=(1280, 1000))
    assert shot.std() > 20  # not a blank page
    pano = np.asarray(Image.open(tiny_run / "panorama.png").convert("RGB"))
    score = resembles(shot, pano)
    assert score > 0.4, score
    assert resembles(np.full_like(shot, 255), pano) < 0.05  # the measure rejects a blank page


def test_previews_are_reused_and_deterministic(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert make_previews(run)["reused"]
    # Another config redoes them (small: quick).
    small = PreviewConfig(view_width=64, view_height=40, frames=4, frame_width=64, frame_height=48)
    rec = make_previews(run, small)
    assert not rec["reused"] and Image.open(run / "flythrough.gif").n_frames == 4
    before = {n: (run / n).read_bytes() for n in ("preview.png", "flythrough.gif", "flythrough.mp4")}
    # An edited preview is redone, with the same bytes: same inputs, same pictures and video.
    (run / "preview.png").write_bytes(b"x")
    assert not make_previews(run, small)["reused"]
    assert {n: (run / n).read_bytes() for n in before} == before
    assert make_previews(run, small)["reused"]
    # No fly-through asked for: the old one is removed, not left stale.
    make_previews(run, PreviewConfig(view_width=64, view_height=40, frames=0))
    assert not (run / "flythrough.gif").exists() and not (run / "flythrough.mp4").exists()


def test_report_command_validates_the_assets_once(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["report", str(run), "-q"]) == 0
    stored = json.loads((run / "validation.json").read_text())["files"]
    assert {"world.glb", "world.usdz", "splats.ply", "splats.spz"} <= set(stored)
    page = (run / "report.html").read_text()
    assert "not validated" not in page and ("passed" in page or "skipped" in page)
    mtime = (run / "validation.json").stat().st_mtime_ns
    assert main(["report", str(run), "-q"]) == 0
    assert (run / "validation.json").stat().st_mtime_ns == mtime  # unchanged files: results reused


def test_report_command_rebuilds_and_handles_partial_runs(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "report.html").unlink()
    assert main(["report", str(run), "--no-validate", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert "world.glb" in (run / "report.html").read_text()
    # A run stopped after the panorama: a report without previews, no error.
    part = tmp_path / "part"
    assert (
        main(
            [
                "generate",
                "a desert canyon",
                "-o",
                str(part),
                "--preset",
                "fast",
                "--set",
                "panorama.width=128",
                "--until",
                "panorama",
                "-q",
            ]
        )
        == 0
    )
    page = (part / "report.html").read_text()
    assert "desert canyon" in page and "No exported assets" in page and not (part / "preview.png").exists()


def test_report_of_a_folder_without_a_run_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no worldgen run" in capsys.readouterr().err


def test_truth_free_measures_for_a_user_panorama(tiny_run, tmp_path):
    """A world without a SceneSpec has no ground truth: holes only, estimated from its own depth."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    m = json.loads((run / "manifest.json").read_text())
    del m["stages"]["panorama"]["artifacts"]["scene_spec"]
    (run / "manifest.json").write_text(json.dumps(m))
    q = make_previews(run, PreviewConfig(view_width=96, view_height=60, frames=0))["quality"]
    assert q["truth"] is None
    for v in q["views"]:
        assert set(v["mesh"]) == {"holes"} and set(v["splats"]) == {"holes"}
    path = write_report(run, validate=False, config=PreviewConfig(view_width=96, view_height=60, frames=0))
    assert "No ground truth" in path.read_text()
