"""Paths, disks, spec files and planted pickles, through the CLI: one line, exit 2, nothing torn."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _runfiles import run_outputs

import worldgen.io as wio
from worldgen.cli.main import main
from worldgen.io import TMP_PREFIX, encode_png
from worldgen.pipeline import MANIFEST


@pytest.fixture
def files(tmp_path):
    yy, xx = np.mgrid[0:32, 0:64]
    img = np.stack([xx * 4, yy * 8, (xx + yy) % 256], -1).astype(np.uint8)
    d = (3.0 + np.cos(xx / 5.0)).astype(np.float32)
    d[:4] = np.inf
    (tmp_path / "pano.png").write_bytes(encode_png(img))
    np.save(tmp_path / "depth.npy", d)
    return tmp_path


def _gen(files: Path, out: Path, *extra: str) -> list[str]:
    return [
        "generate",
        "--panorama",
        str(files / "pano.png"),
        "--depth",
        str(files / "depth.npy"),
        "--until",
        "depth",
        "-o",
        str(out),
        *extra,
    ]


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _consistent(out: Path, ref: Path | None = None) -> None:
    """No temp file and nothing torn: every file left is recorded in the manifest with its hash,
    or (written by the stage that failed, before the manifest could record it) complete, equal to
    the uninterrupted run's."""
    m = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).exists() else {"stages": {}}
    recorded = {f: sha for e in m["stages"].values() for f, sha in e["files"].items()}
    for p in out.iterdir():
        if p.name == MANIFEST:
            continue
        assert not p.name.startswith(TMP_PREFIX), p.name
        if p.name in recorded:
            assert hashlib.sha256(p.read_bytes()).hexdigest() == recorded[p.name], p.name
        else:
            assert ref is not None and p.read_bytes() == (ref / p.name).read_bytes(), p.name


def test_spaces_and_non_ascii_paths(files, capsys):
    d = files / "mes données ü" / "vue à 360°"
    d.mkdir(parents=True)
    (d / "pano 1 ø.png").write_bytes((files / "pano.png").read_bytes())
    (d / "profondeur é.npy").write_bytes((files / "depth.npy").read_bytes())
    out = files / "sortie ß" / "run 1"
    code = main(
        ["generate", "--panorama", str(d / "pano 1 ø.png"), "--depth", str(d / "profondeur é.npy")]
        + ["--until", "depth", "-o", str(out), "-q"]
    )
    assert code == 0, capsys.readouterr().err
    assert (out / "depth.npz").is_file() and (out / "panorama.png").is_file()


def test_output_path_that_is_a_file(files, capsys):
    code = main(_gen(files, files / "pano.png"))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "is a file" in line and "-o" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the patched test covers it")
def test_read_only_folder(files, capsys):
    ro = files / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code = main(_gen(files, ro / "out"))
    finally:
        ro.chmod(0o755)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "cannot write" in line and "-o" in line


def test_folder_turning_read_only_mid_run(files, capsys, monkeypatch):
    out = files / "out"

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(wio.tempfile, "mkstemp", refuse)
    code = main(_gen(files, out))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "cannot write" in line and "writable folder" in line
    _consistent(out)


@pytest.mark.parametrize("failing_write", [2, 4])  # given_depth.npz (after panorama.png), depth.npz
def test_full_disk_stops_cleanly_and_resumes(files, capsys, monkeypatch, failing_write):
    ref = files / "ref"
    assert main(_gen(files, ref, "-q")) == 0
    capsys.readouterr()
    out = files / "out"
    real_fdopen = os.fdopen
    writes = {"n": 0}

    class FullDisk(io.RawIOBase):
        """Takes half of what it is given, then fails like a full disk."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data[: len(data) // 2]))
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __exit__(self, *exc):
            self.f.close()

    def fdopen(fd, *a, **k):
        f = real_fdopen(fd, *a, **k)
        writes["n"] += 1
        return FullDisk(f) if writes["n"] == failing_write else f

    monkeypatch.setattr(wio.os, "fdopen", fdopen)
    code = main(_gen(files, out, "-q"))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "disk is full" in line and "run the same command again" in line
    _consistent(out, ref)  # no truncated artifact: the half-written temp file is gone
    monkeypatch.setattr(wio.os, "fdopen", real_fdopen)  # space is free again
    assert main(_gen(files, out, "-q")) == 0
    assert run_outputs(out) == run_outputs(ref)


@pytest.mark.parametrize(
    "spec, words",
    [
        ('{"setting": 3}', ("setting", "string")),
        ('{"setting": "forest", "colour": "red"}', ("unknown field", "colour")),
        ('{"objects": {"pine": 1e9}}', ("pine", "[0.0, 5.0]")),
        ('{"relief": 1e9}', ("relief", "[0.0, 3000.0]")),
        ('{"relief": NaN}', ("relief",)),
        ('{"seed": -1}', ("seed",)),
        ('["forest"]', ("JSON object",)),
        ("[" * 100_000 + "]" * 100_000, ("nested too deeply",)),
        ('{"prompt": "' + "x" * (2 << 20) + '"}', ("MB",)),
        ('{"setting": "forest"', ("not valid JSON",)),
    ],
)
def test_bad_spec_files(tmp_path, capsys, spec, words):
    (tmp_path / "spec.json").write_text(spec)
    code = main(["generate", "--spec", str(tmp_path / "spec.json"), "--until", "panorama", "-o", str(tmp_path / "o")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2, line
    for w in words:
        assert w in line, line
    assert not (tmp_path / "o" / "panorama.png").exists()


class _Bomb:
    """Unpickling this creates a marker file: proof that pickled code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_planted_pickle_is_refused_not_executed(files, capsys):
    out = files / "out"
    assert main(_gen(files, out, "-q")) == 0
    capsys.readouterr()
    marker = files / "pwned"
    arr = np.empty(1, object)
    arr[0] = _Bomb(str(marker))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        member = io.BytesIO()
        np.lib.format.write_array(member, arr, allow_pickle=True)
        z.writestr("depth.npy", member.getvalue())
        z.writestr("sky.npy", member.getvalue())
    data = buf.getvalue()
    (out / "depth.npz").write_bytes(data)
    # The attacker also fixes the manifest, so the hash check passes and the file gets decoded.
    m = json.loads((out / MANIFEST).read_text())
    sha = hashlib.sha256(data).hexdigest()
    m["stages"]["depth"]["files"]["depth.npz"] = sha
    m["stages"]["depth"]["artifacts"]["depth"][1] = sha
    (out / MANIFEST).write_text(json.dumps(m))
    code = main(_gen(files, out, "--until", "gaussians", "--backend", "gaussians=init", "-q"))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "depth.npz" in line and "pickled" in line
    assert not marker.exists()
