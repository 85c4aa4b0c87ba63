"""File I/O: atomic writes, deterministic archives, images and depth maps on disk.

Every file worldgen writes goes through :func:`atomic_write` (temp file in the same folder,
fsync, rename), so a run killed at any moment leaves either the old file or the new one,
never a torn one. Archives are written with fixed timestamps so equal data gives equal bytes.
"""

from __future__ import annotations

import contextlib
import errno
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
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename.

    A failed write (full disk, read-only or unwritable folder) removes the temp file, leaves any
    earlier ``path`` untouched and raises :class:`OutputError` in one line saying what to do.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(write_error_message(path, e)) from e
        raise


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def write_error_message(path: Path, e: OSError) -> str:
    """One line for a failed write: what happened to which file, and what to do."""
    where = f"{path.name} in {str(path.parent)!r}"
    if e.errno in _DISK_FULL:
        return (
            f"the disk is full: could not write {where} ({_reason(e)}); free some space and run the same "
            "command again to resume (finished stages are kept)"
        )
    if e.errno in _NOT_WRITABLE:
        return f"cannot write {where} ({e.strerror}); choose a writable folder with -o"
    return f"could not write {where} ({e.strerror or e}); check the folder and run the same command again"


def _reason(e: OSError) -> str:
    return e.strerror or errno.errorcode.get(e.errno or 0, "error")


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
    except ValueError as e:
        if "allow_pickle" in str(e):  # an object array: loading it would run pickled code
            raise InputError(
                "archive holds a pickled object array, which worldgen never loads (it could run code); "
                "delete the file and run again"
            ) from e
        raise InputError(f"archive is corrupt ({e}); delete it and run again") from e
    except (zipfile.BadZipFile, OSError, RecursionError) as e:
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


# What a file's first bytes say it is, and the extensions that format may carry.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"RIFF", 0, "WEBP"),
    (b"GIF8", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"v/1\x01", 0, "EXR"),
    (b"#?RADIANCE", 0, "HDR"),
    (b"#?RGBE", 0, "HDR"),
    (b"\x93NUMPY", 0, "NPY"),
    (b"PK\x03\x04", 0, "ZIP"),
)
_EXTENSIONS = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "WEBP": (".webp",),
    "GIF": (".gif",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "EXR": (".exr",),
    "HDR": (".hdr", ".pic"),
    "NPY": (".npy",),
    "ZIP": (".npz",),
}

MAX_IMAGE_PIXELS = 16384 * 8192 * 2
"""Largest image decoded (268M pixels, 805 MB as 8-bit RGB); larger ones are refused, not decoded."""


def sniff_format(path: Path) -> str | None:
    """The format a file's first bytes announce ("PNG", "JPEG", "EXR"...), None if unknown."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, off, name in _MAGIC:
        if head[off : off + len(magic)] == magic:
            return name
    return None


def _check_extension(p: Path, kind: str) -> str | None:
    """Refuse a file whose extension names another format than its content (one line)."""
    fmt = sniff_format(p)
    suffix = p.suffix.lower()
    claimed = next((f for f, exts in _EXTENSIONS.items() if suffix in exts), None)
    if fmt is not None and claimed is not None and fmt != claimed:
        good = _EXTENSIONS[fmt][0]
        raise InputError(
            f"{kind} {p.name} is a {fmt} file but its extension says {claimed}; "
            f"rename it to {p.with_suffix(good).name} (or re-export it as {claimed})"
        )
    return fmt


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
"""ISO-BMFF ``ftyp`` brands of HEIF images (HEVC-coded: what iPhones and many Android phones save)."""


def _undecodable_format(p: Path) -> tuple[str, str] | None:
    """A common photo format Pillow does not decode, from the file's first bytes: (what it is, a command
    that converts it), or None. HEIC/HEIF (phones' default) and JPEG XL; AVIF, which shares HEIF's
    container, is decoded by Pillow and never reaches here."""
    with open(p, "rb") as f:
        head = f.read(32)
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "an AVIF image", "heif-convert"  # only where Pillow was built without AVIF
    if head[4:8] == b"ftyp" and (head[8:12] in _HEIF_BRANDS or any(b in head[16:32] for b in _HEIF_BRANDS)):
        return "a HEIC/HEIF photo", "heif-convert"
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a":
        return "a JPEG XL image", "djxl"
    return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 sRGB; see :func:`read_image_notes`."""
    return read_image_notes(path)[0]


def read_image_notes(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read a colour image as [H, W, 3] uint8 sRGB, converting what a user would expect to work.

    Converted (each conversion adds a note): 16-bit (rounded to 8 bits), greyscale, palette,
    RGBA / LA (alpha dropped), CMYK and YCbCr JPEG, EXIF orientation (applied), float TIFF and
    OpenEXR and Radiance .hdr colour (linear light, tone-mapped to sRGB). Refused in one line: a
    missing, empty, truncated or corrupt file, an extension that lies about the format, an image
    over :data:`MAX_IMAGE_PIXELS`.

    Returns:
        (rgb [H, W, 3] uint8, notes: list of one-line strings saying what was converted)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file {str(p)!r} does not exist; check the path")
    if p.stat().st_size == 0:
        raise InputError(f"image {p.name} is empty (0 bytes); give the image file itself")
    fmt = _check_extension(p, "image")
    if fmt == "EXR":
        return _tonemap(_read_exr_rgb(p), p.name)
    if fmt == "HDR":
        return _tonemap(read_hdr(p), p.name)
    notes: list[str] = []
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS // 2  # Pillow raises above 2x this
    try:
        with Image.open(p) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"image {p.name} is {im.width}x{im.height} ({im.width * im.height / 1e6:.0f}M pixels), over the "
                    f"{MAX_IMAGE_PIXELS / 1e6:.0f}M-pixel limit; downscale it (e.g. to 8192x4096)"
                )
            frames = int(getattr(im, "n_frames", 1) or 1)
            if frames > 1:  # an animated GIF/WebP/PNG or a multi-page TIFF: Pillow opens the first
                notes.append(f"{p.name}: {frames} frames or pages; the first is used")
            im.load()
            if im.getexif().get(0x0112, 1) not in (0, 1):
                notes.append(f"{p.name}: EXIF orientation {im.getexif()[0x0112]} applied")
                im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
                grey = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
                notes.append(f"{p.name}: {'16' if top > 255 else '32'}-bit greyscale converted to 8-bit")
                return np.repeat(grey[..., None], 3, axis=2), notes
            if mode == "F":
                a = np.asarray(im, dtype=np.float32)
                rgb, more = _tonemap(np.repeat(a[..., None], 3, axis=2), p.name)
                return rgb, notes + more
            if mode != "RGB":
                what = {
                    "L": "greyscale",
                    "LA": "greyscale with alpha (alpha dropped)",
                    "P": "palette",
                    "PA": "palette with alpha (alpha dropped)",
                    "RGBA": "RGBA (alpha dropped)",
                    "RGBa": "RGBA (alpha dropped)",
                    "CMYK": "CMYK",
                    "YCbCr": "YCbCr",
                    "1": "black-and-white",
                }.get(mode, mode)
                notes.append(f"{p.name}: {what} converted to RGB")
                if mode in ("P", "PA") and "transparency" in im.info:
                    im = im.convert("RGBA")
            rgb = np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"image {p.name} is too large to decode safely ({e}); downscale it (e.g. to 8192x4096)") from e
    except (UnidentifiedImageError, SyntaxError) as e:
        known = _undecodable_format(p)
        if known:
            # a phone's HEIC photo is an image, not a corrupt file: say what it is and how to convert it
            name, convert = known
            raise InputError(
                f"image {p.name} is {name}, which this install cannot decode; convert it to JPEG or PNG "
                f"(e.g. '{convert} {p.name} {p.stem}.{'png' if 'XL' in name else 'jpg'}') and give that"
            ) from e
        raise InputError(
            f"cannot read image {p.name}: the file is corrupt or not an image ({e.__class__.__name__})"
        ) from e
    except OSError as e:
        why = "truncated" if "truncated" in str(e) else "corrupt"
        raise InputError(f"cannot read image {p.name}: the file is {why} ({e}); re-export or re-download it") from e
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    return rgb, notes


def read_hdr(path: str | os.PathLike) -> np.ndarray:
    """Read a Radiance RGBE (.hdr / .pic) image as linear-light float32 RGB. [H, W, 3]

    Scanlines may be flat or new-style run-length encoded (what every current writer makes, Poly
    Haven's HDRIs included). The standard orientation ``-Y H +X W`` is read; others, the XYZE
    format and the obsolete 1984 run-length scheme are refused in one line. The decoder loops
    over runs, not pixels (a run covers up to 127 pixels of one channel).
    """
    p = Path(path)
    data = p.read_bytes()
    head_end = data.find(b"\n\n")
    res_end = data.find(b"\n", head_end + 2) if head_end >= 0 else -1
    if res_end < 0:
        raise InputError(f"cannot read {p.name}: the Radiance header is incomplete; re-export the image")
    for line in data[:head_end].split(b"\n"):
        if line.startswith(b"FORMAT=") and line.strip() != b"FORMAT=32-bit_rle_rgbe":
            what = line[7:].decode("ascii", "replace").strip()
            raise InputError(f"{p.name} is a Radiance image in {what}, not RGB; re-save it as RGBE (or .exr)")
    res = data[head_end + 2 : res_end].split()
    if len(res) != 4 or res[0] != b"-Y" or res[2] != b"+X" or not (res[1].isdigit() and res[3].isdigit()):
        shown = data[head_end + 2 : res_end].decode("ascii", "replace")
        raise InputError(f"{p.name}: Radiance orientation {shown!r} is not read; re-save it as '-Y H +X W' or .exr")
    H, W = int(res[1]), int(res[3])
    if H * W > MAX_IMAGE_PIXELS or H == 0 or W == 0:
        raise InputError(f"image {p.name} is {W}x{H}; give one of at most {MAX_IMAGE_PIXELS / 1e6:.0f}M pixels")
    buf = np.frombuffer(data, np.uint8)
    planes = np.empty((H, 4, W), np.uint8)  # channel-major scanlines, as RLE stores them
    pos = res_end + 1
    try:
        for y in range(H):
            if 8 <= W <= 32767 and data[pos] == 2 and data[pos + 1] == 2 and (data[pos + 2] << 8 | data[pos + 3]) == W:
                pos += 4
                for c in range(4):
                    row, x = planes[y, c], 0
                    while x < W:
                        n = data[pos]
                        if n > 128:  # a run: one byte repeated n - 128 times
                            n -= 128
                            row[x : x + n] = data[pos + 1]
                            pos += 2
                        else:  # n literal bytes
                            if n == 0 or pos + 1 + n > len(data):
                                raise IndexError
                            row[x : x + n] = buf[pos + 1 : pos + 1 + n]
                            pos += 1 + n
                        x += n
                    if x != W:
                        raise IndexError
            else:
                flat = buf[pos : pos + 4 * W]
                if flat.size < 4 * W:
                    raise IndexError
                if (flat[0:3] == 1).all():
                    raise InputError(f"{p.name} uses the obsolete 1984 Radiance run-length scheme; re-save it")
                planes[y] = flat.reshape(W, 4).T
                pos += 4 * W
    except IndexError:
        raise InputError(
            f"cannot read {p.name}: the file is truncated or corrupt; re-export or re-download it"
        ) from None
    rgbe = planes.transpose(0, 2, 1)  # [H, W, 4]
    e = rgbe[..., 3:4].astype(np.int32)
    return np.where(e > 0, np.ldexp(rgbe[..., :3] + 0.5, e - 136), 0.0).astype(np.float32)


# An HDR panorama whose median luminance lies in this range is shown at its own exposure: HDRI
# libraries (Poly Haven, Blender's studio lights) store display-referred scales, and a dark one is
# dark on purpose (Blender's moonless golf course 0.014, its black-curtained studio 0.005: raised to
# mid grey, as every file once was, they came out as a grey day and a grey room). A brighter median
# is lowered to mid grey (0.18), or the Reinhard curve below clips it (it reaches white at 1.67: a
# sunny HDRI's sky and ground would be blown out); a file darker than the range is in camera units
# and is raised to mid grey.
HDR_OWN_EXPOSURE = (0.002, 0.18)


def _tonemap(linear: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """Linear-light float RGB -> 8-bit sRGB: the file's own exposure when its median luminance is in
    ``HDR_OWN_EXPOSURE``, else the exposure that puts the median at 0.18 (mid grey); then Reinhard
    x / (1 + x) with its white point lifted (x 1.6) and the sRGB transfer curve.
    [H, W, 3] -> [H, W, 3] uint8
    """
    a = np.nan_to_num(np.asarray(linear, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    a = np.maximum(a, 0.0)
    lum = a.mean(-1)
    pos = lum[lum > 0]
    med = float(np.median(pos)) if pos.size else 1.0
    lo, hi = HDR_OWN_EXPOSURE
    own = lo <= med <= hi
    x = a if own else a * (0.18 / med)  # (med > 0: 1.0 when nothing is lit)
    x = x / (1.0 + x) * 1.6  # Reinhard, white point lifted so mid grey is not muddy
    x = np.clip(x, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    rgb = np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)
    how = (
        f"at its own exposure (median luminance {med:.3g}: a dark scene stays dark)"
        if own
        else f"exposed so its median luminance ({med:.3g}, outside {lo:g}-{hi:g}) is mid grey"
    )
    return rgb, [f"{name}: high-dynamic-range colour tone-mapped (Reinhard) to 8-bit sRGB {how}"]


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a depth file as Euclidean metres [H, W] float32 (+inf and 0 mean sky).

    Formats: ``.npy`` (float metres), ``.exr`` (metres: the Z, depth or Y channel, or R when the
    colour channels are equal), ``.png`` (16-bit, millimetres; 0 = sky). Refused in one line:
    integer .npy (units unknown), 8-bit PNG, several different channels, negative values, NaN,
    no surface at all (every value 0 or +inf). Never unpickles (``allow_pickle=False``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"depth file {str(p)!r} does not exist; check the path")
    if p.stat().st_size == 0:
        raise InputError(f"depth {p.name} is empty (0 bytes); give the depth file itself")
    suffix = p.suffix.lower()
    try:
        _check_extension(p, "depth")
        if suffix == ".npy":
            d = np.load(p, allow_pickle=False)
            if not isinstance(d, np.ndarray):
                raise InputError(f"depth {p.name} is not a single array; save one [H, W] float array with np.save")
            if np.issubdtype(d.dtype, np.integer) or d.dtype == bool:
                raise InputError(
                    f"depth {p.name} holds {d.dtype} integers, whose unit worldgen cannot know; save float metres "
                    "(e.g. (d / 1000).astype('float32') for millimetres)"
                )
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
        msg = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"cannot read depth {p.name}: the file is corrupt ({e.__class__.__name__}: {msg})") from e
    d = np.asarray(d)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[..., 0]
    elif d.ndim == 3 and 1 < d.shape[2] <= 4:
        if not all(np.array_equal(d[..., 0], d[..., k], equal_nan=True) for k in range(1, min(3, d.shape[2]))):
            raise InputError(
                f"depth {p.name} has {d.shape[2]} different channels; give one channel of metres (e.g. d[..., 0])"
            )
        d = d[..., 0]
    if d.ndim != 2:
        raise InputError(f"depth {p.name} has shape {list(d.shape)}; expected a single-channel [H, W] map")
    if not np.issubdtype(d.dtype, np.number) or np.iscomplexobj(d):
        raise InputError(f"depth {p.name} holds {d.dtype} values; expected float numbers in metres")
    d = d.astype(np.float32)
    check_depth_values(d, p.name)
    return d


def check_depth_values(d: np.ndarray, name: str) -> None:
    """One-line InputError for depth no pipeline can use: NaN, negative, no surface at all."""
    nan = int(np.isnan(d).sum())
    if nan == d.size:
        raise InputError(f"depth {name} is all NaN; give distances in metres (+inf or 0 for sky)")
    if nan:
        raise InputError(f"depth {name} holds {nan} NaN value(s); fill them, or mark sky with +inf or 0")
    neg = int((d < 0).sum())
    if neg:
        raise InputError(
            f"depth {name} holds {neg} negative value(s) (min {float(d.min()):g}); depth is a distance in metres, "
            "use +inf or 0 for sky"
        )
    if not (np.isfinite(d) & (d > 0)).any():
        raise InputError(f"depth {name} has no surface: every value is 0 or +inf (sky); give distances in metres")


def _read_exr_rgb(p: Path) -> np.ndarray:
    """Colour channels of an OpenEXR image, linear light. [H, W, 3] float32"""
    try:
        import OpenEXR  # type: ignore[import-not-found]
    except ImportError as e:
        from .errors import MissingDependencyError

        raise MissingDependencyError("OpenEXR", "exr", "reading .exr images") from e
    try:
        with OpenEXR.File(str(p)) as f:
            ch = f.channels()
            if "RGB" in ch or "RGBA" in ch:
                a = np.asarray(ch.get("RGB", ch.get("RGBA")).pixels, dtype=np.float32)[..., :3]
            elif all(c in ch for c in "RGB"):
                a = np.stack([np.asarray(ch[c].pixels, np.float32) for c in "RGB"], -1)
            else:
                one = next((c for c in ("Y", "Z", "R") if c in ch), next(iter(ch)))
                a = np.repeat(np.asarray(ch[one].pixels, np.float32)[..., None], 3, axis=2)
    except Exception as e:
        raise InputError(f"cannot read image {p.name}: the EXR file is corrupt ({e.__class__.__name__})") from e
    return a


def _read_exr(p: Path) -> np.ndarray:
    try:
        import OpenEXR  # type: ignore[import-not-found]
    except ImportError:
        OpenEXR = None
    if OpenEXR is not None:
        with OpenEXR.File(str(p)) as f:
            channels = f.channels()
            # Z or depth first: a multi-channel EXR may carry colour next to its depth. Grouped
            # colour ("RGB") comes back [H, W, 3]; read_depth accepts it only if its channels agree.
            name = next((c for c in ("Z", "depth", "Y", "R") if c in channels), next(iter(channels)))
            return np.asarray(channels[name].pixels, dtype=np.float32)
    from .errors import MissingDependencyError

    raise MissingDependencyError("OpenEXR", "exr", "reading .exr depth")
