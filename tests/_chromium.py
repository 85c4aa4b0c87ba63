"""Headless Chromium for the page tests: screenshots and the DOM after scripts ran."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",  # WebGL 2 still works (SwiftShader through ANGLE)
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "headless Chromium is not installed (tools/system-deps.sh --node installs it: apt-get install chromium)"
        )
    return exe


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="wg-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=timeout,
        )


def screenshot(url: str, out: Path, size=(1280, 900), wait_ms: int = 0, timeout: float = 90) -> np.ndarray:
    """Load ``url`` and return the screenshot as [H, W, 3] uint8 (also written to ``out``).

    wait_ms: virtual time the page gets before the shot (scripts, WebGL frames, websockets).
    """
    from PIL import Image

    args = [f"--window-size={size[0]},{size[1]}", f"--screenshot={out}"]
    if wait_ms:
        args.append(f"--virtual-time-budget={wait_ms}")
    r = _run([*args, url], timeout)
    assert out.is_file(), f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr.decode()[-800:]}"
    return np.asarray(Image.open(out).convert("RGB"))


def dump_dom(url: str, wait_ms: int = 2000, timeout: float = 90) -> str:
    """The page's DOM after ``wait_ms`` of virtual time."""
    r = _run([f"--virtual-time-budget={wait_ms}", "--dump-dom", url], timeout)
    return r.stdout.decode()


def resembles(shot: np.ndarray, reference: np.ndarray, bins: int = 6) -> float:
    """Histogram intersection in [0, 1] between the colours of ``shot`` (near-white/grey page
    background left out) and ``reference`` (e.g. the panorama): 1 = the same colour mix."""

    def hist(img: np.ndarray, drop_page: bool) -> np.ndarray:
        px = img.reshape(-1, 3).astype(np.int64)
        if drop_page:
            spread = px.max(1) - px.min(1)
            px = px[~((px.min(1) > 200) & (spread < 12))]  # white and light grey page colours
        q = px * bins // 256
        h = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3).astype(np.float64)
        return h / max(h.sum(), 1.0)

    return float(np.minimum(hist(shot, True), hist(reference, False)).sum())
