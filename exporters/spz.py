"""Niantic SPZ (gzip container, versions 2 and 3): compact quantised splats.

Which version for which consumer (no single version loads everywhere):
    - v2: aras-p UnityGaussianSplatting (accepts only v2), Spark 2.x (v1-3), splat-transform
      (v2-4), Niantic's library, Babylon.js. The default.
    - v3: same readers minus aras-p; quaternions use "smallest three" (4 bytes, more precise).
    - v4 (ZSTD streams) is what PlayCanvas's engine parser wants; it is not written here:
      convert with ``splat-transform splats.spz --spz-version 4 out.spz``.

Layout (nianticlabs/spz ``load-spz.cc``): gzip of a 16-byte header
{u32 magic 0x5053474e "NGSP", u32 version, u32 numPoints, u8 shDegree, u8 fractionalBits,
u8 flags, u8 reserved} followed by the attribute blocks, each for all splats in turn:
positions (3 x 24-bit signed fixed point), alphas (u8 sigmoid*255, kept in [1, 254] so readers
get finite logits), colours (u8, DC*0.15*255 + 127.5), scales (u8, (log sigma + 10)*16),
rotations (v2: x, y, z bytes of the unit quaternion with w >= 0; v3: smallest-three 32-bit), SH (u8, coefficient-major with RGB
innermost, 5 bits kept for degree 1 and 4 bits above, as Niantic's packer does).

Frame: SPZ stores "RUB" (x right, y up, z back), which is worldgen's world frame: no change.
"""

from __future__ import annotations

import struct

import numpy as np

from worldgen.types import GaussianCloud

from ._splat_common import prepare
from .settings import ExportSettings

MAGIC = 0x5053474E
_COLOR_SCALE = 0.15


def _u8(x: np.ndarray) -> np.ndarray:
    """Round and saturate to bytes (in-place min/max: np.clip is several times slower here)."""
    y = np.rint(np.asarray(x, dtype=np.float32))
    np.maximum(y, 0.0, out=y)
    np.minimum(y, 255.0, out=y)
    return y.astype(np.uint8)


def _fractional_bits(means: np.ndarray) -> int:
    """Most fractional bits (<= 12, Niantic's default) that keep every coordinate in 24 bits."""
    m = float(np.abs(means).max()) if means.size else 0.0
    for bits in range(12, -1, -1):
        if m * (1 << bits) < (1 << 23) - 1:
            return bits
    return 0


def _quant_sh(x: np.ndarray, bits: int) -> np.ndarray:
    """Niantic's SH byte: round(x * 128) + 128, snapped to a bucket of 2^(8 - bits) levels."""
    shift = 8 - bits
    y = np.multiply(x, np.float32(128.0), dtype=np.float32)
    np.rint(y, out=y)
    np.maximum(y, -128.0, out=y)
    np.minimum(y, 127.0, out=y)
    q = y.astype(np.int16)
    q += 128
    if shift:
        q += 1 << (shift - 1)
        q >>= shift
        q <<= shift
        np.minimum(q, 255, out=q)
    return q.astype(np.uint8)


_GZIP_BLOCK = 8 << 20
"""Bytes per independently deflated block (8 MiB: blocks lose < 0.1% ratio to one stream)."""


def _gzip_parallel(data: bytes, level: int = 6) -> bytes:
    """One gzip member whose deflate stream is made of blocks compressed on several threads.

    SPZ readers (Niantic's inflate loop) stop at the first gzip member's end, so the blocks
    are joined pigz-style inside one stream: every block but the last ends with a sync flush
    (byte aligned, not final), and the header/trailer (CRC-32, size) cover the whole payload.
    zlib releases the GIL, so blocks compress in parallel; the output is deterministic.
    The Z_RLE strategy (Huffman coding plus runs) is 2-3x faster than level 1's LZ77 and
    ~15% smaller on quantised splat bytes, whose redundancy is in symbol frequencies, not in
    repeated strings. Any inflater reads it: it is ordinary deflate.
    """
    import os
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    view = memoryview(data)
    blocks = [view[i : i + _GZIP_BLOCK] for i in range(0, len(data), _GZIP_BLOCK)] or [view]

    def deflate(i: int) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
        last = i == len(blocks) - 1
        return c.compress(blocks[i]) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    workers = max(1, min(len(blocks), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
    with ThreadPoolExecutor(workers) as pool:
        body = list(pool.map(deflate, range(len(blocks))))
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name, mtime 0, OS unknown
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return b"".join([header, *body, trailer])


def _rotations_v2(q_xyzw: np.ndarray) -> np.ndarray:
    q = np.where(q_xyzw[:, 3:4] < 0, -q_xyzw, q_xyzw)
    return _u8(q[:, :3] * 127.5 + 127.5)


def _rotations_v3(q_xyzw: np.ndarray) -> np.ndarray:
    n = q_xyzw.shape[0]
    largest = np.argmax(np.abs(q_xyzw), axis=1)
    neg = q_xyzw[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):  # fixed 4 iterations over components, vectorised over splats
        keep = largest != i
        qi = q_xyzw[:, i]
        negbit = ((qi < 0) ^ neg).astype(np.uint32)
        mag = np.floor(511.0 * (np.abs(qi) / np.sqrt(0.5)) + 0.5).astype(np.uint32)
        mag = np.minimum(mag, 511)
        comp = np.where(keep, (comp << np.uint32(10)) | (negbit << np.uint32(9)) | mag, comp)
    return comp.astype("<u4").view(np.uint8).reshape(n, 4)


def export_spz(cloud: GaussianCloud, cfg: ExportSettings | None = None) -> bytes:
    """SPZ bytes of ``cloud`` (version from ``cfg.spz_version``; see the module docstring)."""
    cfg = cfg or ExportSettings()
    s = prepare(cloud, "world")
    n = len(s)
    bits = _fractional_bits(s.means)
    fixed = np.rint(s.means.astype(np.float64) * (1 << bits)).astype(np.int64)
    fixed = np.clip(fixed, -(1 << 23), (1 << 23) - 1).astype("<i4")
    positions = fixed.reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3]  # low 3 bytes, LE
    # Readers turn the byte back into a logit: 0 and 255 give -inf / +inf (splat-transform writes
    # them into its PLY as such), so alphas stay in [1, 254], a change of less than one step.
    alphas = np.clip(_u8(s.opacities.astype(np.float64) * 255.0), 1, 254)
    colors = _u8(s.sh[:, 0, :].astype(np.float64) * (_COLOR_SCALE * 255.0) + 127.5)
    scales = _u8((s.log_scales.astype(np.float64) + 10.0) * 16.0)
    q_xyzw = np.concatenate([s.quats[:, 1:], s.quats[:, :1]], axis=1).astype(np.float64)
    rotations = _rotations_v2(q_xyzw) if cfg.spz_version == 2 else _rotations_v3(q_xyzw)
    rest = s.sh[:, 1:, :]  # [N, K-1, 3], coefficient-major with RGB innermost: SPZ's order
    sh = np.empty(rest.shape, dtype=np.uint8)
    if rest.shape[1]:
        sh[:, :3] = _quant_sh(rest[:, :3], 5)
        sh[:, 3:] = _quant_sh(rest[:, 3:], 4)
    header = struct.pack("<IIIBBBB", MAGIC, cfg.spz_version, n, s.sh_degree, bits, 0, 0)
    payload = b"".join(
        [
            header,
            np.ascontiguousarray(positions).tobytes(),
            alphas.tobytes(),
            colors.tobytes(),
            scales.tobytes(),
            rotations.tobytes(),
            sh.tobytes(),
        ]
    )
    return _gzip_parallel(payload)


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "spz",
        "splats",
        "splats.spz",
        export_spz,
        "Niantic SPZ v2/v3 (compressed ~10x): Unity aras-p (v2), Spark, Babylon.js, splat-transform",
    )
)
