"""Run three.js's GLTFLoader in headless Chromium on a GLB and get the rendered frame back.

three comes from the repository's node_modules (installed by ``npm ci`` from package.json and
package-lock.json); nothing is fetched at run time. The page (tools/threejs_view.html) is served
from 127.0.0.1 with the GLB and POSTs the frame back.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from _chromium import profile_dir, start, stop

ROOT = Path(__file__).resolve().parents[1]
THREE = ROOT / "node_modules" / "three"
PAGE = ROOT / "tools" / "threejs_view.html"


def missing() -> str | None:
    """Why the three.js client cannot run here, or None."""
    if shutil.which("chromium") is None:
        return "chromium is not installed (tools/system-deps.sh installs it)"
    if not (THREE / "build" / "three.module.js").is_file() or not (SPARK / "dist" / "spark.module.js").is_file():
        return "node_modules/three or @sparkjsdev/spark is missing (run `npm ci`)"
    return None


SPARK = ROOT / "node_modules" / "@sparkjsdev" / "spark"


def render_glb(glb: bytes, width: int, height: int, fov_deg: float, eye, look, far: float | None = None) -> dict:
    """{"ok", "drawn" (mesh names three.js draws), "far", "image" [H, W, 3] uint8} or {"ok": False, "error"}."""
    query = {"glb": "/world.glb", "w": width, "h": height, "fov": fov_deg}
    query.update(eye=",".join(map(str, eye)), look=",".join(map(str, look)))
    if far is not None:
        query["far"] = far
    return render_page(PAGE, {"/world.glb": glb}, query, width, height)


def render_environment(hdr: bytes, width: int, height: int, fov_deg: float, look, rot_y: float) -> dict:
    """three.js shows ``sky.hdr`` (HDRLoader) as ``scene.background`` turned by ``rot_y`` radians about Y."""
    query = {"env": "/sky.hdr", "envRotY": rot_y, "w": width, "h": height, "fov": fov_deg}
    query.update(eye="0,0,0", look=",".join(map(str, look)))
    return render_page(PAGE, {"/sky.hdr": hdr}, query, width, height)


def render_splat_glb(
    glb: bytes, width: int, height: int, fov_deg: float, eye, look, frames: int = 3, output_linear: bool = True
) -> dict:
    """three.js's GLTFLoader + GaussianSplat addon (KHR_gaussian_splatting) renders ``splats.glb``."""
    query = {"glb": "/splats.glb", "w": width, "h": height, "fov": fov_deg, "frames": frames}
    query["outputLinear"] = int(output_linear)
    query.update(eye=",".join(map(str, eye)), look=",".join(map(str, look)))
    return render_page(ROOT / "tools" / "threejs_splat_view.html", {"/splats.glb": glb}, query, width, height)


def render_splats(spz: bytes, width: int, height: int, fov_deg: float, eye, look, frames: int = 30) -> dict:
    """Spark renders ``splats.spz``: {"ok", "count", "image"} or {"ok": False, "error"}."""
    query = {"splats": "/splats.spz", "w": width, "h": height, "fov": fov_deg, "frames": frames}
    query.update(eye=",".join(map(str, eye)), look=",".join(map(str, look)))
    return render_page(ROOT / "tools" / "spark_view.html", {"/splats.spz": spz}, query, width, height)


def render_page(page: Path, files: dict[str, bytes], query: dict, width: int, height: int) -> dict:
    """Serve ``page`` as /view.html with ``files`` and node_modules' three (/three/) and Spark (/spark/),
    open it in headless Chromium and return what it POSTs to /result (its PNG decoded to ``image``)."""
    from PIL import Image

    result: dict = {}
    got = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, data: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/view.html":
                return self._send(page.read_bytes(), "text/html")
            if path in files:
                return self._send(files[path], "application/octet-stream")
            for prefix, base in (("/three/", THREE), ("/spark/", SPARK)):
                if path.startswith(prefix):
                    f = (base / path[len(prefix) :]).resolve()
                    if base.resolve() in f.parents and f.is_file():
                        return self._send(f.read_bytes(), "text/javascript")
            self.send_error(404)

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            result.update(json.loads(body))
            self._send(b"ok", "text/plain")
            got.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/view.html?{urlencode(query)}"
    with profile_dir() as profile:
        proc = start(
            [
                "chromium",
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu-sandbox",
                "--disable-background-networking",
                "--disable-extensions",
                "--no-first-run",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                url,
            ]
        )
        try:
            deadline = time.monotonic() + 90
            while not got.wait(0.2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    return {"ok": False, "error": f"chromium gave no result (exit {proc.poll()})"}
        finally:
            stop(proc)
            server.shutdown()
    if result.get("ok"):
        png = base64.b64decode(result.pop("png").split(",", 1)[1])
        result["image"] = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return result
