"""Batch bookkeeping on disk: per-job records, the skip check, ``batch.json`` and locks.

A finished job leaves ``job.json`` in its folder: the job as validated, a key of what it computes
(:attr:`Job.key`), the size, time stamp and sha256 of each input file, the sha256 of the run's
``manifest.json`` and the size of every output. A re-run skips a job when all of these still hold
(an input whose time stamp moved is re-hashed, so touching a file does not redo work). Anything
else runs again through :func:`worldgen.pipeline.run_pipeline`, whose per-stage cache keys reuse
every stage an interrupted or changed job had already finished.

``batch.json`` in the batch root follows the contract in docs/batch.md; the folder ``.batch/``
holds locks and worker logs.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worldgen.errors import InputError, OutputError
from worldgen.io import atomic_write
from worldgen.pipeline import MANIFEST

from .jobs import Job

JOB_RECORD = "job.json"
JOB_LOG = "job.log"
BATCH_JSON = "batch.json"
STATE_DIR = ".batch"
STATUSES = ("done", "failed", "skipped", "timeout", "interrupted", "pending")


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def job_dir(root: Path, job: Job) -> Path:
    """The job's folder under ``root``; OutputError when it would leave ``root`` (a symlink out).

    Folder names are single sanitised components (:mod:`.names`), so only a symlink can lead
    elsewhere; the check costs one ``lstat`` unless there is one.
    """
    if "/" in job.folder or job.folder in ("", ".", ".."):
        raise OutputError(f"job folder {job.folder!r} is not a plain folder name")
    path = Path(root) / job.folder
    if path.is_symlink():
        target = path.resolve()
        if target.parent != Path(root).resolve():
            raise OutputError(f"job folder {job.folder!r} is a symlink out of the batch root; remove it")
    return path


def _plain(name: str) -> bool:
    return not (name.startswith("/") or ".." in name.split("/") or "\x00" in name)


def file_sha(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_outputs(manifest: dict) -> list[str]:
    """Files of a run folder that the run wrote, relative to the folder (manifest.json included)."""
    files = {MANIFEST}
    for entry in manifest.get("stages", {}).values():
        files.update(entry.get("files", {}))
    return sorted(files)


def write_job_record(folder: Path, job: Job, manifest: dict, extra: dict[str, Any]) -> dict:
    """Write ``folder/job.json`` for a job whose run just finished; returns the record."""
    inputs = {}
    for fld, path in job.inputs().items():
        st = os.stat(path)
        inputs[fld] = {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha(path)}
    outputs = run_outputs(manifest)
    record = {
        "format": 1,
        "name": job.name,
        "source": job.source,
        "key": job.key,
        "job": job.to_json(),
        "inputs": inputs,
        "manifest_sha256": file_sha(folder / MANIFEST),
        "outputs": {f: (folder / f).stat().st_size for f in outputs},
        "finished": now_iso(),
        **extra,
    }
    atomic_write(folder / JOB_RECORD, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return record


def finished_record(root: Path, job: Job) -> dict | None:
    """The job's ``job.json`` when the job is finished and nothing it depends on changed, else None."""
    try:
        folder = job_dir(root, job)
        record = json.loads((folder / JOB_RECORD).read_bytes())
        if record.get("format") != 1 or record.get("key") != job.key:
            return None
        rec_inputs = record["inputs"]
        inputs = job.inputs()
        if set(rec_inputs) != set(inputs):
            return None
        for fld, path in inputs.items():
            rec = rec_inputs[fld]
            st = os.stat(path)
            if st.st_size != rec["size"]:
                return None
            if (rec["path"], rec["mtime_ns"]) != (path, st.st_mtime_ns) and file_sha(path) != rec["sha256"]:
                return None
        if file_sha(folder / MANIFEST) != record["manifest_sha256"]:
            return None
        base = str(folder)
        for f, size in record["outputs"].items():
            if not _plain(f) or os.stat(os.path.join(base, f)).st_size != size:
                return None
        return record
    except (OSError, ValueError, KeyError, TypeError, InputError):
        return None


class Ledger:
    """``batch.json``: the state of every job, rewritten atomically (at most every ``every`` s)."""

    def __init__(self, root: Path, jobs_file: str, jobs: Iterable[Job], every: float = 1.0):
        self.path = root / BATCH_JSON
        self.every = every
        self._last = 0.0
        self.data: dict[str, Any] = {
            "format": 1,
            "jobs_file": jobs_file,
            "root": str(root),
            "started": now_iso(),
            "finished": None,
            "jobs": [],
        }
        self.entries: dict[str, dict[str, Any]] = {}
        for job in jobs:
            entry = {
                "name": job.name,
                "folder": job.folder,
                "source": job.source,
                "status": "pending",
                "seconds": 0.0,
                "attempts": 0,
                "outputs": [],
                "error": None,
                "log": None,
            }
            self.data["jobs"].append(entry)
            self.entries[job.name] = entry

    def update(self, name: str, **fields: Any) -> None:
        self.entries[name].update(fields)
        self.flush()

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for e in self.entries.values():
            out[e["status"]] += 1
        return out

    def flush(self, force: bool = False, finished: bool = False) -> None:
        t = time.monotonic()
        if not force and t - self._last < self.every:
            return
        self._last = t
        if finished:
            self.data["finished"] = now_iso()
        # One job per line: readable, and json's C encoder (used only without indent) keeps a
        # 10,000-job file fast to write.
        head = {k: v for k, v in self.data.items() if k != "jobs"}
        lines = ",\n  ".join(json.dumps(e) for e in self.data["jobs"])
        text = json.dumps(head)[:-1] + (', "jobs": [\n  ' + lines + "\n]}\n" if lines else ', "jobs": []}\n')
        atomic_write(self.path, text.encode())


class Busy(OutputError):
    """Another process holds a lock (a worker of an earlier batch may still be finishing a job)."""


def note_in_log(root: Path, job: Job, text: str) -> None:
    """Append a line to the job's ``job.log`` from the driver (why its worker died or was stopped)."""
    with contextlib.suppress(OSError, OutputError):
        folder = job_dir(root, job)
        if folder.is_dir():
            with open(folder / JOB_LOG, "a") as f:
                f.write(f"== {now_iso()} {text}\n")


@contextlib.contextmanager
def hold_lock(path: Path, what: str):
    """An exclusive, non-blocking ``flock`` on ``path`` for the block; OutputError when another
    process holds it. The kernel drops the lock when the process dies, however it dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{what} is busy: another worldgen process holds {path}; wait for it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
        yield
    finally:
        os.close(fd)


def job_lock(root: Path, job: Job):
    """The lock a worker holds while it writes the job's folder."""
    return hold_lock(Path(root) / STATE_DIR / "locks" / f"{job.folder}.lock", f"job folder {job.folder!r}")


def batch_lock(root: Path):
    """The lock the batch driver holds on the root while it runs (one batch per root at a time)."""
    return hold_lock(Path(root) / STATE_DIR / "batch.lock", f"batch root {str(root)!r}")
