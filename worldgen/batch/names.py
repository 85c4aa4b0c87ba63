"""Job names -> folder names that stay inside the batch root on every file system.

A folder name keeps ASCII letters, digits, ``.``, ``_`` and ``-``; every other character becomes
``_``; leading dots and dashes are dropped (no hidden folders, no ``..``, nothing that reads as an
option); Windows device names get a ``_`` prefix; a name longer than :data:`MAX_LEN` is cut and
given a hash of the whole name, so two long names that share a prefix stay apart. Two jobs whose
folders differ only by case would collide on macOS and Windows, so the batch refuses them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LEN = 96
"""Longest folder name (well under the 255-byte limit of common file systems)."""

RESERVED = frozenset({"batch.json", "index.html"})
"""Entries of the batch root that a job folder must not take (lower case)."""

_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name: str) -> str:
    """The folder of the job called ``name``; ValueError when nothing usable is left.

    >>> folder_name("../../etc/passwd")
    'etc_passwd'
    >>> folder_name("forest #2")
    'forest_2'
    """
    if "\x00" in name:
        raise ValueError("a job name must not contain NUL characters")
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"_+", "_", _BAD.sub("_", re.sub(r"\.\.+", "_", text))).strip("_")
    text = text.lstrip(".-_")
    text = text.rstrip(". ")  # Windows drops trailing dots and spaces
    if not text:
        raise ValueError(f"job name {name!r} has no letters or digits to name a folder with; rename it")
    if text.split(".")[0].lower() in _WINDOWS_DEVICES:
        text = "_" + text
    if text.lower() in RESERVED:
        raise ValueError(f"job name {name!r} would take the batch's own {text.lower()}; rename it")
    if len(text) > MAX_LEN:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        text = text[: MAX_LEN - 11].rstrip(".") + "-" + digest
    return text
