"""File I/O: atomic writes, deterministic archives, images and depth maps on disk.

Every file worldgen writes goes through :func:`atomic_write` (temp file in the same folder,
fsync, rename), so a run killed at any moment leaves either the old file or the new one,
never a torn one. Archives are written with fixed timestamps so equal data gives equal bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, OutputError

TMP_PREFIX = ".wg-tmp-"
"""Prefix of in-flight temp files; the runner removes stale ones when a run starts."""


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def safe_join(root: str | os.PathLike, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and any path that escapes ``root``."""
    root_p = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise OutputError(f"output name {relative!r} escapes the output folder; use a plain relative name")
    full = (root_p / rel).resolve()
    if full != root_p and root_p not in full.parents:
        raise OutputError(f"output name {relative!r} escapes the output folder; use a plain relative name")
    return full


_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def arrays_to_bytes(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> bytes:
    """A deterministic ``.npz`` (readable by ``numpy.load``) holding ``arrays`` and JSON ``meta``.

    numpy's own savez stamps the current time into the zip, so equal data would give different
    bytes; this writer fixes the timestamps and the member order.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in arrays:
            arr = np.ascontiguousarray(arrays[name])
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
        if meta is not None:
            info = zipfile.ZipInfo("__meta__.json", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, json.dumps(meta, sort_keys=True).encode())
    return buf.getvalue()


def arrays_from_bytes(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`arrays_to_bytes`. Returns (arrays, meta)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                raw = zf.read(name)
                if name == "__meta__.json":
                    meta = json.loads(raw)
                elif name.endswith(".npy"):
                    arrays[name[:-4]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"archive is corrupt ({e}); delete it and run again") from e
    return arrays, meta


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit [H, W], [H, W, 3|4] or 16-bit [H, W] image (deterministic)."""
    from PIL import Image

    arr = np.ascontiguousarray(image)
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise InputError("16-bit PNGs are written for single-channel images only")
        img = Image.fromarray(arr)  # mode "I;16"
    elif arr.dtype == np.uint8:
        img = Image.fromarray(arr)
    else:
        raise InputError(f"PNG needs uint8 or uint16 pixels, got {arr.dtype}")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit image file as [H, W, 3] uint8 sRGB (alpha dropped, greyscale expanded)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file {str(p)!r} does not exist; check the path")
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I", "F"):
                raise InputError(f"{p.name} is a 16-bit/float image; give an 8-bit sRGB colour image")
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(
            f"cannot read image {p.name}: the file is corrupt or not an image ({e.__class__.__name__})"
        ) from e
    return rgb


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a depth file as Euclidean metres [H, W] float32 (+inf and 0 mean sky).

    Formats: ``.npy`` (float metres), ``.exr`` (first channel, metres; needs OpenEXR or imageio),
    ``.png`` (16-bit, millimetres; 0 = sky).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"depth file {str(p)!r} does not exist; check the path")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            d = np.load(p, allow_pickle=False)
        elif suffix == ".png":
            from PIL import Image

            with Image.open(p) as im:
                im.load()
                if im.mode not in ("I;16", "I;16B", "I"):
                    raise InputError(
                        f"{p.name} is an {im.mode} PNG; depth PNGs must be 16-bit greyscale in millimetres"
                    )
                d = np.asarray(im, dtype=np.float32) / 1000.0
        elif suffix == ".exr":
            d = _read_exr(p)
        else:
            raise InputError(f"unknown depth format {suffix!r}; use .npy (metres), .exr (metres) or 16-bit .png (mm)")
    except InputError:
        raise
    except Exception as e:  # corrupt files surface as many exception types from the readers
        raise InputError(f"cannot read depth {p.name}: the file is corrupt ({e.__class__.__name__}: {e})") from e
    d = np.asarray(d)
    if d.ndim == 3 and d.shape[2] >= 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise InputError(f"depth {p.name} has shape {list(d.shape)}; expected a single-channel [H, W] map")
    if not np.issubdtype(d.dtype, np.number):
        raise InputError(f"depth {p.name} holds {d.dtype} values; expected numbers in metres")
    return d.astype(np.float32)


def _read_exr(p: Path) -> np.ndarray:
    try:
        import OpenEXR  # type: ignore[import-not-found]
    except ImportError:
        OpenEXR = None
    if OpenEXR is not None:
        with OpenEXR.File(str(p)) as f:
            channels = f.channels()
            name = next((c for c in ("Z", "Y", "R", "depth") if c in channels), next(iter(channels)))
            return np.asarray(channels[name].pixels, dtype=np.float32)
    from .errors import MissingDependencyError

    raise MissingDependencyError("OpenEXR", "exr", "reading .exr depth")
