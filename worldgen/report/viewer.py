"""``worldgen view``: explore a run in the browser with viser (the nerfstudio project's web viewer).

The page shows the splats and the mesh (a toggle), the capture point, and two ways to move:
**walk** (W/A/S/D move, arrow keys turn, the eye kept at standing height: ``eye_height`` above
the ground under it, found by ray casting the collision mesh) and **orbit** (drag to orbit a
point, scroll to zoom). The mesh is the one engines import: worldgen's own GLB exporter writes
its world and sky parts (collision left out). Browsers sort and draw splats on the GPU; a very
large cloud is subsampled to ``max_splats`` (each kept splat enlarged to cover the same area)
and the page says so.

viser serves its prebuilt client from the installed package: nothing is fetched from the
network, and the server listens on 127.0.0.1 unless another host is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..pipeline import load_artifact, read_manifest
from ..types import GaussianCloud, MeshScene
from .quality import thin_cloud

log = logging.getLogger(__name__)

DEFAULT_MAX_SPLATS = 1_000_000
"""Splats sent to the browser at most: a 2048x1024 world has ~2.5 M; a laptop's browser draws
1 M smoothly (viser sorts them on the GPU side in a worker)."""


def _viser():
    try:
        import viser
    except ImportError as e:
        raise MissingDependencyError("viser", "view", "worldgen view") from e
    return viser


@dataclass(frozen=True)
class BrowserSplats:
    """Splats in viser's layout.

    Args:
        centers: [M, 3] float32, metres. covariances: [M, 3, 3] float32, m². rgbs: [M, 3] in [0, 1].
        opacities: [M, 1] in [0, 1]. total: splats in the run (M <= total).
    """

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray
    total: int


def browser_splats(cloud: GaussianCloud, max_splats: int = DEFAULT_MAX_SPLATS, seed: int = 0) -> BrowserSplats:
    """Covariances (R S² Rᵀ) and colours of a cloud, subsampled to ``max_splats``.

    A seeded uniform subset keeps a fraction f of the splats; each kept one is scaled by
    1/sqrt(f) across, so the surface stays covered (coarser, not holed). Deterministic.
    """
    if max_splats < 1:
        raise InputError(f"--max-splats {max_splats} must be at least 1")
    total = len(cloud)
    cloud = thin_cloud(cloud, max_splats, seed)
    q = cloud.quats.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    R = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        1,
    )
    s = cloud.scales.astype(np.float64)
    cov = (R * (s * s)[:, None, :]) @ R.transpose(0, 2, 1)
    return BrowserSplats(
        centers=np.ascontiguousarray(cloud.means, np.float32),
        covariances=cov.astype(np.float32),
        rgbs=np.clip(cloud.colors, 0.0, 1.0).astype(np.float32),
        opacities=np.clip(cloud.opacities, 0.0, 1.0).astype(np.float32)[:, None],
        total=total,
    )


# three.js' ACESFilmicToneMapping (the default of viser's react-three-fiber canvas), as matrices
# acting on column vectors: GLSL's mat3 constructors list columns.
_ACES_IN = np.array([[0.59719, 0.35458, 0.04823], [0.07600, 0.90834, 0.01566], [0.02840, 0.13383, 0.83777]])
_ACES_OUT = np.array([[1.60475, -0.53108, -0.07367], [-0.10208, 1.10813, -0.00605], [-0.00327, -0.07276, 1.07602]])


def undo_tone_mapping(texture: np.ndarray) -> np.ndarray:
    """Texture colours that three.js' ACES filmic tone mapping (exposure 1) turns back into
    ``texture``, so an unlit mesh shows its captured colours in viser instead of washed-out ones.
    Colours brighter than the tone curve reaches from a linear 1.0 come out at that limit.

    Args:
        texture: 8-bit sRGB. [H, W, 3] uint8

    Returns:
        8-bit sRGB. [H, W, 3] uint8
    """
    from ..types import linear_to_srgb, srgb_to_linear

    # Each distinct colour once: textures hold far fewer colours than pixels.
    flat = texture.reshape(-1, 3).astype(np.int32)
    colours, where = np.unique((flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2], return_inverse=True)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], -1)
    y = srgb_to_linear(rgb.astype(np.float32) / 255.0).astype(np.float64)
    z = np.clip(y @ np.linalg.inv(_ACES_OUT).T, 0.0, 1.0)
    # RRTAndODTFit(v) = (v (v + 0.0245786) - 0.000090537) / (v (0.983729 v + 0.432951) + 0.238081) = z,
    # a quadratic in v with one non-negative root for z in [0, 1].
    a = 1.0 - 0.983729 * z
    b = 0.0245786 - 0.4329510 * z
    c = -(0.000090537 + 0.238081 * z)
    v = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    x = np.clip(0.6 * (v @ np.linalg.inv(_ACES_IN).T), 0.0, 1.0)
    out = np.rint(linear_to_srgb(x.astype(np.float32)) * 255.0).astype(np.uint8)
    return out[where.reshape(-1)].reshape(texture.shape)


def mesh_glb(scene: MeshScene) -> bytes:
    """GLB of the parts an engine shows (world, background, sky) by worldgen's exporter (unlit, as
    engines get them), with textures pre-compensated for the viewer's tone mapping
    (:func:`undo_tone_mapping`)."""
    from worldgen.exporters.gltf import export_glb

    parts = {}
    for k in ("world", "background", "sky"):
        if k in scene:
            m = scene[k]
            parts[k] = m if m.texture is None else dataclasses.replace(m, texture=undo_tone_mapping(m.texture))
    if not parts:
        raise InputError("the mesh has no world or sky part to show")
    return export_glb(MeshScene(parts))


class Ground:
    """Standing height over the run's ground: ray cast down onto the collision (else world) mesh."""

    def __init__(self, scene: MeshScene | None, eye_height: float):
        self.eye_height = eye_height
        self._caster = None
        part = None if scene is None else (scene["collision"] if "collision" in scene else scene.parts.get("world"))
        if part is not None and len(part.faces):
            from ..evaluation.geometry import _Caster

            self._caster = _Caster([(part.vertices, part.faces)])

    def eye_y(self, x: float, z: float, current_y: float = 0.0) -> float:
        """Eye height (world y, metres) of someone standing at (x, z) whose eye is now at
        ``current_y``: the ground is looked for straight down from a step (0.5 m) above the eye, so
        canopies and roofs overhead do not count. ``current_y`` when nothing is below."""
        if self._caster is None:
            return current_y
        top = current_y + 0.5
        hit = self._caster.cast(np.array([x, top, z]), np.array([[0.0, -1.0, 0.0]]))
        t = float(hit["t_hit"][0])
        return top - t + self.eye_height if math.isfinite(t) else current_y


@dataclass
class Viewer:
    """A running viewer: ``url`` to open, ``stop()`` to shut it down."""

    server: object
    url: str
    handles: dict = dataclasses.field(default_factory=dict)
    toggle: object = None

    def show(self, what: str) -> None:
        """Show "splats" or "mesh" in every connected page (what the page's toggle does)."""
        if what not in self.handles:
            raise InputError(f"this viewer has no {what}; it shows {', '.join(self.handles)}")
        for k, h in self.handles.items():
            h.visible = k == what
        self.toggle.value = what

    def stop(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):  # viser prints its banners to stdout
            self.server.stop()


def start_viewer(
    run_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_splats: int = DEFAULT_MAX_SPLATS,
    show: str | None = None,
) -> Viewer:
    """Load a run and serve it; returns once the server listens.

    Args:
        run_dir: a run folder with gaussians and/or a mesh.
        host: interface to listen on (127.0.0.1: this machine only).
        port: TCP port (viser moves to the next free one when taken).
        max_splats: splats sent to the browser at most.
        show: "splats" or "mesh" first (default: splats when the run has them).
    """
    if show not in (None, "splats", "mesh"):
        raise InputError(f"--show {show!r} is not 'splats' or 'mesh'")
    viser = _viser()
    run = Path(run_dir)
    manifest = read_manifest(run)
    have = {k for st in manifest.get("stages", {}).values() for k in st.get("artifacts", {})}
    if "gaussians" not in have and "mesh" not in have:
        raise InputError(
            f"the run in {str(run)!r} has no splats or mesh yet; run 'worldgen generate' to the mesh stage"
        )
    eye = float(manifest.get("eye_height", 1.6))
    cloud = load_artifact(run, "gaussians") if "gaussians" in have else None
    scene = load_artifact(run, "mesh") if "mesh" in have else None
    splats = browser_splats(cloud, max_splats) if cloud is not None else None
    glb = mesh_glb(scene) if scene is not None else None
    ground = Ground(scene, eye)
    sky_r = float(np.abs(scene["sky"].vertices).max()) if scene is not None and "sky" in scene else 1000.0

    # viser prints a banner to stdout; stdout carries only the URL (scripts read it).
    with contextlib.redirect_stdout(sys.stderr):
        server = viser.ViserServer(host=host, port=port, label="worldgen", verbose=False)
    try:
        handles, toggle = _build_scene(server, run, splats, glb, ground, sky_r, show)
    except BaseException:
        Viewer(server, "").stop()
        raise
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return Viewer(server, f"http://{shown_host}:{server.get_port()}", handles, toggle)


def _build_scene(
    server, run: Path, splats: BrowserSplats | None, glb: bytes | None, ground: Ground, sky_r: float, show: str | None
):
    server.scene.set_up_direction("+y")
    server.scene.configure_fog(0.0, 1.0, enabled=False)  # viser's default fog whitens the far world
    first = show or ("splats" if splats is not None else "mesh")
    handles = {}
    if splats is not None:
        handles["splats"] = server.scene.add_gaussian_splats(
            "/splats", splats.centers, splats.covariances, splats.rgbs, splats.opacities, visible=first == "splats"
        )
    if glb is not None:
        handles["mesh"] = server.scene.add_glb(
            "/mesh", glb, visible=first == "mesh", cast_shadow=False, receive_shadow=False
        )
    server.scene.add_icosphere("/capture_point", radius=0.06, color=(255, 40, 40), position=(0.0, 0.0, 0.0))
    server.scene.add_label("/capture_point/label", "capture point")
    eye0 = ground.eye_y(0.0, 0.0)
    server.initial_camera.position = (0.0, eye0, 0.01)
    server.initial_camera.look_at = (0.0, eye0, -1.0)

    gui = server.gui
    gui.add_markdown(f"**{run.name}**")
    options = [k for k in ("splats", "mesh") if k in handles]
    toggle = gui.add_dropdown("Show", options, initial_value=first)
    if splats is not None and len(splats.centers) < splats.total:
        gui.add_markdown(
            f"Showing {len(splats.centers):,} of {splats.total:,} splats (a uniform subset, each enlarged "
            "to cover the same area), so the browser stays smooth; the run's files hold all of them."
        )
    elif splats is not None:
        gui.add_markdown(f"{splats.total:,} splats.")
    mode = gui.add_dropdown("Controls", ["walk", "orbit"], initial_value="walk")
    gui.add_markdown(
        "**walk**: W/A/S/D move, arrow keys turn, the eye stays at standing height over the ground.  \n"
        "**orbit**: drag to orbit, scroll to zoom, right-drag to pan."
    )
    back = gui.add_button("Back to the capture point")

    @toggle.on_update
    def _(_event) -> None:
        for k, h in handles.items():
            h.visible = k == toggle.value

    def to_capture(client) -> None:
        with client.atomic():
            client.camera.up_direction = (0.0, 1.0, 0.0)
            client.camera.position = (0.0, eye0, 0.01)
            client.camera.look_at = (0.0, eye0, -1.0)

    @back.on_click
    def _(event) -> None:
        to_capture(event.client)

    @mode.on_update
    def _(event) -> None:
        c = event.client
        if mode.value == "orbit":
            with c.atomic():
                c.camera.position = (3.0, 2.0, 3.0)
                c.camera.look_at = (0.0, eye0 - ground.eye_height, 0.0)
        else:
            to_capture(c)

    @server.on_client_connect
    def _(client) -> None:
        client.camera.near = 0.02
        client.camera.far = 2.5 * sky_r
        to_capture(client)  # new clients start at the capture point, looking ahead (-Z)

        @client.camera.on_update
        def _(cam) -> None:
            if mode.value != "walk":
                return
            p, t = np.asarray(cam.position), np.asarray(cam.look_at)
            y = ground.eye_y(float(p[0]), float(p[2]), float(p[1]))
            if abs(p[1] - y) > 0.01:  # keep the eye at standing height; the look target follows
                with client.atomic():
                    cam.position = (p[0], y, p[2])
                    cam.look_at = (t[0], t[1] + (y - p[1]), t[2])

    return handles, toggle
