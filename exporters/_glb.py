"""A tiny deterministic GLB assembler: JSON document + one binary buffer, 4-byte aligned.

Writing the container by hand (rather than through pygltflib objects) keeps large arrays as
single ``tobytes`` copies and the JSON key order fixed, so equal inputs give equal bytes.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
_COMPONENT = {
    np.dtype("float32"): 5126,
    np.dtype("uint32"): 5125,
    np.dtype("uint16"): 5123,
    np.dtype("uint8"): 5121,
    np.dtype("int8"): 5120,
    np.dtype("int16"): 5122,
}
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}


class GlbBuilder:
    """Collects buffer views, accessors and images; :meth:`to_bytes` writes the GLB."""

    def __init__(self, generator: str = "worldgen") -> None:
        self.doc: dict[str, Any] = {"asset": {"version": "2.0", "generator": generator}}
        self._chunks: list[bytes] = []
        self._offset = 0

    def _list(self, key: str) -> list:
        return self.doc.setdefault(key, [])

    def add(self, key: str, obj: dict) -> int:
        """Append ``obj`` to the top-level array ``key``; returns its index."""
        lst = self._list(key)
        lst.append(obj)
        return len(lst) - 1

    def buffer_view(self, data: bytes, target: int | None = None, byte_stride: int | None = None) -> int:
        pad = (-self._offset) % 4
        if pad:
            self._chunks.append(b"\0" * pad)
            self._offset += pad
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self._offset, "byteLength": len(data)}
        if byte_stride:
            view["byteStride"] = byte_stride
        if target is not None:
            view["target"] = target
        self._chunks.append(data)
        self._offset += len(data)
        return self.add("bufferViews", view)

    def accessor(
        self, arr: np.ndarray, target: int | None = ARRAY_BUFFER, minmax: bool = False, normalized: bool = False
    ) -> int:
        """An accessor over a fresh tightly-packed view of ``arr`` ([N] or [N, C])."""
        a = np.ascontiguousarray(arr)
        comps = 1 if a.ndim == 1 else a.shape[1]
        view = self.buffer_view(a.astype(a.dtype.newbyteorder("<")).tobytes(), target)
        acc: dict[str, Any] = {
            "bufferView": view,
            "componentType": _COMPONENT[a.dtype],
            "count": int(a.shape[0]),
            "type": _TYPE[comps],
        }
        if normalized:
            acc["normalized"] = True
        if minmax and a.shape[0]:
            flat = a.reshape(a.shape[0], comps)
            acc["min"] = [_num(v) for v in flat.min(axis=0)]
            acc["max"] = [_num(v) for v in flat.max(axis=0)]
        return self.add("accessors", acc)

    def image(self, data: bytes, mime: str, name: str) -> int:
        view = self.buffer_view(data)
        return self.add("images", {"bufferView": view, "mimeType": mime, "name": name})

    def to_bytes(self) -> bytes:
        binary = b"".join(self._chunks)
        binary += b"\0" * ((-len(binary)) % 4)
        if binary:
            self.doc["buffers"] = [{"byteLength": len(binary)}]
        js = json.dumps(self.doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        js += b" " * ((-len(js)) % 4)
        total = 12 + 8 + len(js) + (8 + len(binary) if binary else 0)
        out = [struct.pack("<III", 0x46546C67, 2, total), struct.pack("<II", len(js), 0x4E4F534A), js]
        if binary:
            out += [struct.pack("<II", len(binary), 0x004E4942), binary]
        return b"".join(out)


def _num(v: Any) -> float | int:
    return int(v) if np.issubdtype(type(v), np.integer) else float(v)
