"""Headless Chromium for the page tests: screenshots and the DOM after scripts ran."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
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


@contextlib.contextmanager
def profile_dir():
    """A fresh Chromium profile folder, removed afterwards.

    Chromium's own helper processes (renderer, GPU, crashpad) can still be writing into the
    profile for a moment after the browser process has exited, so a single removal can fail with
    "Directory not empty" (seen under load): removal is retried for up to 5 s, then fails loudly.
    """
    path = tempfile.mkdtemp(prefix="wg-chromium-")
    try:
        yield path
    finally:
        for attempt in range(20):
            try:
                shutil.rmtree(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == 19:
                    raise
                time.sleep(0.25)


def start(args: list[str]) -> subprocess.Popen:
    """Start a browser in a session of its own, so :func:`stop` reaches every process it starts."""
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Stop a browser started by :func:`start` and every helper process it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    # (helpers that outlived the browser's SIGTERM go with the group's SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with profile_dir() as profile:
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


def live_screenshot(
    url: str, out: Path, size=(640, 420), wait_s: float = 60.0, settle: float = 1.0, then=(), ready=None
) -> list[np.ndarray]:
    """Screenshot a live page (websockets, WebGL animation) in real time through the DevTools
    protocol: load ``url``, then capture every 2 s until two captures in a row differ by less than
    ``settle`` (mean absolute 8-bit difference) and the page is not uniform, or ``wait_s`` passes.
    ``ready(img) -> bool`` adds a condition (e.g. the scene's part of the page is not blank: a
    page fading in stays uniform for a while). After that, for each callable in ``then``: call
    it, and capture again the same way.
    Returns the settled captures, [H, W, 3] uint8 each (the first also written to ``out``)."""
    import base64
    import io
    import json
    import time
    import urllib.request

    from PIL import Image
    from websockets.sync.client import connect

    with profile_dir() as profile:
        proc = start(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                "--remote-debugging-port=0",
                "about:blank",
            ]
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.is_file() and port_file.read_text().strip()):
                assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10).read())
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            with connect(ws_url, max_size=None, open_timeout=10) as ws:
                counter = iter(range(1, 1 << 30))

                def call(method: str, **params):
                    i = next(counter)
                    ws.send(json.dumps({"id": i, "method": method, "params": params}))
                    while True:
                        msg = json.loads(ws.recv(timeout=60))
                        if msg.get("id") == i:
                            assert "error" not in msg, msg
                            return msg.get("result", {})

                call("Page.enable")
                call("Page.navigate", url=url)

                def settled() -> np.ndarray:
                    end = time.monotonic() + wait_s
                    prev = None
                    while True:
                        time.sleep(1.5)
                        data = call("Page.captureScreenshot", format="png")["data"]
                        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                        steady = prev is not None and np.abs(img.astype(np.int16) - prev).mean() < settle
                        if steady and img.std() > 5 and (ready is None or ready(img)):
                            return img
                        if time.monotonic() > end:
                            return img
                        prev = img.astype(np.int16)

                shots = [settled()]
                for step in then:
                    step()
                    shots.append(settled())
        finally:
            stop(proc)
    Image.fromarray(shots[0]).save(out)
    return shots
