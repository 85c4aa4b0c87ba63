"""`worldgen view`: the viser page in headless Chromium (WebGL through SwiftShader), the splat
conversion, the tone-mapping compensation and the command's URL/stop behaviour."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from _chromium import chromium, live_screenshot, resembles
from _proc import sigint_default
from PIL import Image

pytest.importorskip("viser", reason="worldgen view needs the 'view' extra: pip install 'worldgen[view]'")

from worldgen.report.viewer import _ACES_IN, _ACES_OUT, browser_splats, start_viewer, undo_tone_mapping  # noqa: E402
from worldgen.types import GaussianCloud, linear_to_srgb, srgb_to_linear  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scene_drawn(img: np.ndarray) -> bool:
    """The lower left of the page (the world from the capture point, no GUI there) is not blank."""
    return img[img.shape[0] // 2 :, : img.shape[1] // 2].std() > 10


def test_viewer_page_shows_the_world(tiny_run, tmp_path):
    """Splats first, then the mesh (the page's toggle), each from the capture point."""
    chromium()
    pano = np.asarray(Image.open(tiny_run / "panorama.png").convert("RGB"))

    def drawn(img: np.ndarray) -> bool:
        # Wait for the world itself, not only a non-blank page (the splats arrive after the page).
        world = img[img.shape[0] // 2 :, : img.shape[1] // 2]
        return _scene_drawn(img) and resembles(world, pano) > 0.2

    viewer = start_viewer(tiny_run, port=_free_port())
    try:
        assert viewer.url.startswith("http://127.0.0.1:")
        shots = live_screenshot(
            viewer.url, tmp_path / "view.png", wait_s=60, then=[lambda: viewer.show("mesh")], ready=drawn
        )
    finally:
        viewer.stop()
    for what, shot in zip(("splats", "mesh"), shots):
        Image.fromarray(shot).save(tmp_path / f"view_{what}.png")
        # The lower left is the world seen from the capture point (the GUI panel sits top right).
        world = shot[shot.shape[0] // 2 :, : shot.shape[1] // 2]
        assert world.std() > 10, f"{what}: blank page"
        # Against the whole panorama: the first view may face the lake or the meadow, so its colour
        # mix is a part of the panorama's. Measured: 0.31-0.48 for this world, < 0.03 for the
        # independent room, street, hills and forest panoramas.
        score = resembles(world, pano)
        assert score > 0.2, (what, score)
    assert np.abs(shots[0].astype(int) - shots[1]).mean() > 1  # the toggle changed what is drawn


def test_browser_splats_covariance_and_subset():
    rng = np.random.default_rng(0)
    n = 1000
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cloud = GaussianCloud.from_activated(
        rng.normal(size=(n, 3)),
        q,
        rng.uniform(0.01, 0.1, (n, 3)),
        rng.uniform(0.2, 1, n),
        colors=rng.uniform(0, 1, (n, 3)),
    )
    full = browser_splats(cloud, max_splats=n)
    # The covariance's eigenvalues are the squared scales.
    eig = np.sort(np.linalg.eigvalsh(full.covariances[:5].astype(np.float64)), axis=1)
    assert np.allclose(eig, np.sort(cloud.scales[:5].astype(np.float64) ** 2, axis=1), rtol=1e-3, atol=1e-9)
    assert np.allclose(full.rgbs, np.clip(cloud.colors, 0, 1), atol=1e-6) and full.opacities.shape == (n, 1)
    sub = browser_splats(cloud, max_splats=250)
    assert len(sub.centers) == 250 and sub.total == n
    # Each kept splat grows by sqrt(1000 / 250) = 2 across (4x in variance), so the surface stays covered.
    keep = [int(np.nonzero((cloud.means == c).all(1))[0][0]) for c in sub.centers[:5]]
    assert np.allclose(sub.covariances[:5], 4 * full.covariances[keep], rtol=1e-3, atol=1e-9)
    again = browser_splats(cloud, max_splats=250)
    assert np.array_equal(sub.centers, again.centers)  # deterministic


def _aces(x_lin: np.ndarray) -> np.ndarray:
    """three.js ACESFilmicToneMapping, exposure 1, on linear colours [..., 3]."""
    c = (x_lin / 0.6) @ _ACES_IN.T
    c = (c * (c + 0.0245786) - 0.000090537) / (c * (0.983729 * c + 0.4329510) + 0.238081)
    return np.clip(c @ _ACES_OUT.T, 0, 1)


def test_undo_tone_mapping_round_trips_colours():
    rng = np.random.default_rng(1)
    tex = rng.integers(30, 200, (64, 64, 3)).astype(np.uint8)

    def shown(t):
        return linear_to_srgb(_aces(srgb_to_linear(t / 255.0).astype(np.float64)).astype(np.float32)) * 255

    err = np.abs(shown(undo_tone_mapping(tex)) - tex)
    # 8-bit rounding through two curves; a few saturated colours lie outside what the curve reaches.
    assert err.mean() < 1.0 and np.percentile(err, 95) < 2.0
    grey = np.repeat(rng.integers(20, 220, (64, 64, 1)), 3, 2).astype(np.uint8)
    assert np.abs(shown(undo_tone_mapping(grey)) - grey).max() < 2.0
    assert np.abs(shown(tex) - tex).mean() > 8.0  # without it the page would wash colours out


def test_view_command_prints_the_url_and_stops_on_ctrl_c(tiny_run):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worldgen.cli", "view", str(tiny_run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=sigint_default,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == f"http://127.0.0.1:{port}", line
        page = urllib.request.urlopen(line, timeout=20).read().decode()
        assert "<html" in page.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    assert proc.stdout.read().strip() == ""  # stdout carries only the URL


def test_view_of_a_run_without_splats_or_mesh_exits_2(tmp_path, capsys):
    from worldgen.cli.main import main

    assert (
        main(
            [
                "generate",
                "a desert",
                "-o",
                str(tmp_path / "r"),
                "--preset",
                "fast",
                "--set",
                "panorama.width=128",
                "--until",
                "depth",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["view", str(tmp_path / "r")]) == 2
    assert "no splats or mesh" in capsys.readouterr().err


def test_walk_keeps_the_eye_at_standing_height(tiny_run):
    from worldgen import load_artifact
    from worldgen.report.viewer import Ground

    ground = Ground(load_artifact(tiny_run, "mesh"), eye_height=1.6)
    # The capture point stands on the ground at eye height: its eye is the origin.
    assert abs(ground.eye_y(0.0, 0.0)) < 0.1
    # An eye lifted by 1 m (Q/E) comes back down to standing height over the same ground.
    assert abs(ground.eye_y(0.0, 0.0, current_y=1.0) - ground.eye_y(0.0, 0.0)) < 0.05
    # Nothing to stand on: the eye stays where it is.
    assert Ground(None, 1.6).eye_y(3.0, 4.0, current_y=0.7) == 0.7
