"""Previews of a finished run: ``preview.png``, a fly-through (``flythrough.mp4``/``.gif``) and the
quality measures behind the report, kept in ``previews.json``.

Everything here is a pure function of the run's artifacts (their hashes in manifest.json) and of
:class:`PreviewConfig`, so equal inputs give equal bytes and a re-run whose artifacts did not
change reuses the files: ``previews.json`` stores the key they were made from and their hashes.
Run times are not stored here (they would change the bytes); the HTML report shows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InputError
from ..io import TMP_PREFIX, atomic_write, encode_png
from ..pipeline import load_artifact, read_manifest
from ..types import DepthMap, Panorama
from . import quality as Q
from .views import VIEWPOINTS, camera_at, loop_cameras

log = logging.getLogger(__name__)

PREVIEWS_JSON = "previews.json"
PREVIEW_PNG = "preview.png"
FLY_MP4 = "flythrough.mp4"
FLY_GIF = "flythrough.gif"
VERSION = 1
"""Bump when the pictures or measures change for the same inputs, so cached previews are redone."""


@dataclass(frozen=True)
class PreviewConfig:
    """Sizes of the previews.

    Args:
        view_width, view_height: size of each viewpoint tile, pixels (256 x 160).
        fov_deg: horizontal field of view of the tiles and the fly-through, degrees (75).
        panorama_width: width of the panorama / depth / semantics tiles, pixels (424).
        frames: fly-through frames; 0 writes no fly-through (24).
        frame_width, frame_height: size of each half (splats | mesh) of a fly-through frame,
            multiples of 16 for the video codec (224 x 128).
        fps: fly-through frames per second (12: a 2 s loop).
        loop_radius_m: radius of the fly-through loop around the capture point, metres (0.5).
        fly_max_splats: splats drawn in fly-through frames at most (300,000): a small frame does
            not need millions, and the CPU rasterizer's time grows with the count; beyond it a
            uniform subset is drawn, each splat enlarged to cover the same area
            (:func:`worldgen.report.quality.thin_cloud`). The views in preview.png use every splat.
    """

    view_width: int = 256
    view_height: int = 160
    fov_deg: float = 75.0
    panorama_width: int = 424
    frames: int = 24
    frame_width: int = 224
    frame_height: int = 128
    fps: int = 12
    loop_radius_m: float = 0.5
    fly_max_splats: int = 300_000


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

_KEYS = ("panorama", "depth", "semantics", "gaussians", "mesh", "scene_spec")


def artifact_hashes(manifest: dict) -> dict[str, str]:
    """sha256 of each artifact the previews read, from the manifest. {key: sha}"""
    out = {}
    for entry in manifest.get("stages", {}).values():
        for key, (_fname, sha) in entry.get("artifacts", {}).items():
            if key in _KEYS:
                out[key] = sha
    return out


def preview_key(manifest: dict, config: PreviewConfig) -> str:
    """Content key of a run's previews: artifact hashes, eye height, config and VERSION."""
    payload = {
        "version": VERSION,
        "artifacts": artifact_hashes(manifest),
        "eye_height": manifest.get("eye_height"),
        "config": dataclasses.asdict(config),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load(run: Path, key: str, have: dict[str, str]) -> Any:
    return load_artifact(run, key) if key in have else None


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------

_DEPTH_PALETTE = np.array(
    [[48, 18, 59], [70, 107, 227], [40, 187, 236], [50, 241, 151], [164, 252, 60], [250, 186, 57], [227, 68, 10]],
    np.float32,
)[::-1]
"""Near (first) to far (last) anchors of the depth colour map (a turbo-like ramp: red is near)."""

SKY_COLOUR = (200, 210, 225)


def depth_colours(depth: DepthMap) -> np.ndarray:
    """Depth colour map: red near, blue far on an inverse-depth scale; sky light grey. [H, W, 3] uint8"""
    d = depth.depth
    out = np.empty(d.shape + (3,), np.uint8)
    out[:] = SKY_COLOUR
    v = depth.valid
    if v.any():
        inv = 1.0 / d[v].astype(np.float64)
        lo, hi = inv.min(), inv.max()
        t = 1.0 - (inv - lo) / max(hi - lo, 1e-12)  # 0 = nearest, 1 = farthest
        t = np.sqrt(t)  # spread the far field, where most of a landscape lies
        x = t * (len(_DEPTH_PALETTE) - 1)
        i = np.clip(np.floor(x).astype(np.int64), 0, len(_DEPTH_PALETTE) - 2)
        f = (x - i)[:, None]
        out[v] = np.rint(_DEPTH_PALETTE[i] * (1 - f) + _DEPTH_PALETTE[i + 1] * f).astype(np.uint8)
    return out


def class_palette(n: int = 256) -> np.ndarray:
    """A fixed colour per class id (sky light blue). [n, 3] uint8"""
    pal = np.random.default_rng(7).integers(40, 255, (n, 3)).astype(np.uint8)
    pal[0] = (120, 170, 255)
    return pal


def semantic_overlay(panorama: Panorama, ids: np.ndarray) -> np.ndarray:
    """The panorama with each pixel's class colour blended over it (50 %). [H, W, 3] uint8"""
    pal = class_palette()
    return np.rint(0.5 * panorama.to_uint8() + 0.5 * pal[ids]).astype(np.uint8)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image

    h = max(1, round(img.shape[0] * width / img.shape[1]))
    return np.asarray(Image.fromarray(img).resize((width, h), Image.Resampling.BOX))


def _sheet(rows: list[tuple[str, list[tuple[str, np.ndarray]]]]) -> np.ndarray:
    """Lay out labelled rows of labelled uint8 tiles on a white sheet. [H, W, 3] uint8"""
    from PIL import Image, ImageDraw

    pad, title_h, label_h = 6, 16, 14
    widths = [sum(t.shape[1] for _, t in tiles) + pad * (len(tiles) + 1) for _, tiles in rows]
    heights = [title_h + max(t.shape[0] for _, t in tiles) + label_h + pad for _, tiles in rows]
    sheet = Image.new("RGB", (max(widths), sum(heights) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for (title, tiles), h in zip(rows, heights):
        draw.text((pad, y), title, fill=(0, 0, 0))
        x = pad
        for label, tile in tiles:
            sheet.paste(Image.fromarray(tile), (x, y + title_h))
            draw.text((x, y + title_h + tile.shape[0] + 1), label, fill=(60, 60, 60))
            x += tile.shape[1] + pad
        y += h
    return np.asarray(sheet)


# --------------------------------------------------------------------------------------------
# Fly-through
# --------------------------------------------------------------------------------------------


def _gif_bytes(frames: list[np.ndarray], fps: int) -> bytes:
    from PIL import Image

    imgs = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=round(1000 / fps), loop=0, optimize=False)
    return buf.getvalue()


def _mp4_bytes(frames: list[np.ndarray], fps: int, folder: Path) -> bytes:
    """H.264 MP4 through imageio-ffmpeg (a static ffmpeg build shipped as a wheel). One encoder
    thread and no creation time, so equal frames give equal bytes."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise BackendUnavailableError(
            "imageio-ffmpeg is not installed (needed for the fly-through video); pip install imageio-ffmpeg"
        ) from e
    h, w = frames[0].shape[:2]
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".mp4", dir=folder)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            tmp,
            (w, h),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=16,
            ffmpeg_log_level="error",
            output_params=["-crf", "23", "-threads", "1", "-map_metadata", "-1", "-fflags", "+bitexact"],
        )
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fly_frames(cloud, scene, cfg: PreviewConfig) -> list[np.ndarray]:
    cams = loop_cameras(cfg.frames, cfg.loop_radius_m, cfg.frame_width, cfg.frame_height, cfg.fov_deg)
    halves = []
    if cloud is not None:
        halves.append(_u8(Q.render_splats(Q.thin_cloud(cloud, cfg.fly_max_splats), cams)["rgb"]))
    if scene is not None:
        halves.append(_u8(Q.render_mesh(scene, cams)["rgb"]))
    return [np.concatenate([h[k] for h in halves], axis=1) for k in range(cfg.frames)]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def make_previews(run_dir: str | os.PathLike, config: PreviewConfig = PreviewConfig(), force: bool = False) -> dict:
    """Write a run's previews and measures, unless ``previews.json`` shows they are current.

    Args:
        run_dir: a run folder (manifest.json with at least a panorama and its depth).
        config: sizes; part of the cache key.
        force: redo them even when current.

    Returns:
        The previews record (as in previews.json): **key**, **files** {name: sha256},
        **quality** (see :func:`measure`), **reused** (True when nothing was redone; not stored).
    """
    run = Path(run_dir)
    manifest = read_manifest(run)
    have = artifact_hashes(manifest)
    if "panorama" not in have or "depth" not in have:
        raise InputError(
            f"the run in {str(run)!r} has no panorama and depth yet; run 'worldgen generate' to the depth stage"
        )
    key = preview_key(manifest, config)
    old = _read_record(run)
    if not force and old.get("key") == key and _files_intact(run, old.get("files", {})):
        return dict(old, reused=True)

    pano: Panorama = load_artifact(run, "panorama")
    depth: DepthMap = load_artifact(run, "depth")
    sem = _load(run, "semantics", have)
    cloud = _load(run, "gaussians", have)
    scene = _load(run, "mesh", have)
    spec = _load(run, "scene_spec", have)
    eye = float(manifest.get("eye_height", 1.6))

    cams = [
        camera_at(v.position, v.yaw_deg, v.pitch_deg, config.view_width, config.view_height, config.fov_deg)
        for v in VIEWPOINTS
    ]
    truth = Q.render_truth(spec, eye, cams) if spec is not None else None
    splats = Q.render_splats(cloud, cams) if cloud is not None else None
    mesh = Q.render_mesh(scene, cams) if scene is not None else None
    quality = measure(depth, cams, truth, splats, mesh)
    quality["counts"] = _counts(pano, cloud, scene)

    pw = config.panorama_width
    top = [
        ("panorama", _resize(pano.to_uint8(), pw)),
        ("depth (red near, blue far; sky grey)", _resize(depth_colours(depth), pw)),
    ]
    if sem is not None:
        top.append(("semantics over the panorama", _resize(semantic_overlay(pano, sem.ids), pw)))
    rows = [("input", top)]
    labels = [v.label for v in VIEWPOINTS]
    if truth is not None:
        rows.append(("ground truth (procedural world)", list(zip(labels, _u8(truth["rgb"])))))
    if splats is not None:
        rows.append(("splats (magenta = hole)", list(zip(labels, _u8(splats["rgb"])))))
    if mesh is not None:
        rows.append(("mesh (magenta = hole, red tint = back faces)", list(zip(labels, _u8(mesh["rgb"])))))
    files = {PREVIEW_PNG: encode_png(_sheet(rows))}
    if config.frames > 0 and (cloud is not None or scene is not None):
        frames = _fly_frames(cloud, scene, config)
        files[FLY_GIF] = _gif_bytes(frames, config.fps)
        files[FLY_MP4] = _mp4_bytes(frames, config.fps, run)
    for name, data in files.items():
        atomic_write(run / name, data)
    record = {
        "format": 1,
        "key": key,
        "files": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()},
        "fly_through": "splats | mesh"
        if cloud is not None and scene is not None
        else ("splats" if cloud is not None else "mesh"),
        "quality": quality,
    }
    for stale in {FLY_GIF, FLY_MP4} - set(files):
        (run / stale).unlink(missing_ok=True)
    atomic_write(run / PREVIEWS_JSON, (json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())
    return dict(record, reused=False)


def _fly_label(cloud, scene, cfg: PreviewConfig) -> str:
    parts = []
    if cloud is not None:
        parts.append(
            "splats" if len(cloud) <= cfg.fly_max_splats else f"splats ({cfg.fly_max_splats:,} of {len(cloud):,})"
        )
    if scene is not None:
        parts.append("mesh")
    return " | ".join(parts)


def measure(depth: DepthMap, cams, truth, splats, mesh) -> dict:
    """Per-viewpoint measures of the splats and the mesh (see worldgen.report.quality).

    Returns:
        dict: **truth** ("procedural" or None), **views** [{label, distance_m, splats: {...},
        mesh: {...}}], **summary** {"splats"|"mesh": {"0 m"|"0.5 m"|"1 m": means over the
        viewpoints at that distance}}.
    """
    far = float(depth.depth[depth.valid].max()) if depth.valid.any() else 1.0
    views = []
    for i, (v, cam) in enumerate(zip(VIEWPOINTS, cams)):
        if truth is not None:
            surface = np.isfinite(truth["depth"][i])
            tkw = {"true_depth": truth["depth"][i], "true_rgb": truth["rgb"][i]}
        else:
            surface = Q.expected_surface(depth, cam)
            tkw = {}
        row: dict[str, Any] = {"label": v.label, "distance_m": v.distance_m}
        if splats is not None:
            row["splats"] = Q.view_measures(
                splats["depth"][i], surface, alpha=splats["alpha"][i], rgb=splats["rgb"][i], far=far, **tkw
            )
        if mesh is not None:
            row["mesh"] = Q.view_measures(mesh["depth"][i], surface, rgb=mesh["rgb"][i], far=far, **tkw)
        views.append(_round(row))
    summary: dict[str, dict] = {}
    for what in ("splats", "mesh"):
        for dist in sorted({v.distance_m for v in VIEWPOINTS}):
            sel = [r[what] for r in views if what in r and r["distance_m"] == dist]
            if sel:
                summary.setdefault(what, {})[f"{dist:g} m"] = _round(
                    {k: float(np.mean([s[k] for s in sel])) for k in sel[0]}
                )
    return {"truth": "procedural" if truth is not None else None, "views": views, "summary": summary}


def _counts(pano: Panorama, cloud, scene) -> dict:
    out: dict[str, Any] = {"panorama": [pano.width, pano.height]}
    if cloud is not None:
        out["splats"] = len(cloud)
    if scene is not None:
        out["triangles"] = {name: int(len(scene[name].faces)) for name in scene.parts}
        world = scene.parts.get("world")
        if world is not None and world.texture is not None:
            out["texture"] = [int(world.texture.shape[1]), int(world.texture.shape[0])]
    return out


def _round(d: dict) -> dict:
    """Round floats for a stable, readable JSON; inf (a perfect PSNR) becomes None."""

    def r(v):
        if isinstance(v, dict):
            return _round(v)
        if isinstance(v, float):
            return round(v, 5) if np.isfinite(v) else None
        return v

    return {k: r(v) for k, v in d.items()}


def _read_record(run: Path) -> dict:
    try:
        rec = json.loads((run / PREVIEWS_JSON).read_text())
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def read_previews(run_dir: str | os.PathLike) -> dict:
    """The stored previews record of a run ({} when there is none)."""
    return _read_record(Path(run_dir))


def _files_intact(run: Path, files: dict) -> bool:
    try:
        return bool(files) and all(hashlib.sha256((run / n).read_bytes()).hexdigest() == s for n, s in files.items())
    except OSError:
        return False


__all__ = ["PreviewConfig", "make_previews", "read_previews", "depth_colours", "semantic_overlay"]
