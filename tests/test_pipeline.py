import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from worldgen import InputError, OutputError
from worldgen.io import TMP_PREFIX, encode_png
from worldgen.pipeline import MANIFEST, RunOptions, choose_backend, run_pipeline
from worldgen.registry import Backend, Request, StageResult, backends, get_backend, register_backend

HERE = Path(__file__).parent


@pytest.fixture
def pano_files(tmp_path, rng):
    """A 64x128 panorama with a matching depth map (metres; sky = inf in the top rows)."""
    img = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 20.0, (64, 128)).astype(np.float32)
    depth[:8] = np.inf
    (tmp_path / "pano.png").write_bytes(encode_png(img))
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path / "pano.png", tmp_path / "depth.npy"


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def test_run_and_manifest(pano_files, tmp_path):
    pano, depth = pano_files
    res = run_pipeline(Request(panorama=str(pano), depth=str(depth)), tmp_path / "out", RunOptions(until="depth"))
    assert [(r.stage, r.backend, r.status) for r in res.stages] == [
        ("panorama", "file", "ran"),
        ("depth", "given", "ran"),
    ]
    m = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert m["stages"]["depth"]["inputs"]["given_depth"] == m["stages"]["panorama"]["artifacts"]["given_depth"][1]
    for s in ("panorama", "depth"):
        e = m["stages"][s]
        assert e["wall_seconds"] >= 0 and e["peak_rss_mb"] > 0 and len(e["key"]) == 64
    assert m["request"]["panorama_sha256"] and m["libraries"]["numpy"]
    assert (tmp_path / "out" / "panorama.png").read_bytes() == pano.read_bytes()


def test_cache_reuse_force_and_from(pano_files, tmp_path):
    pano, depth = pano_files
    req = Request(panorama=str(pano), depth=str(depth))
    out = tmp_path / "out"
    run_pipeline(req, out, RunOptions(until="depth"))
    again = run_pipeline(req, out, RunOptions(until="depth"))
    assert [r.status for r in again.stages] == ["cached", "cached"]
    assert [r.status for r in run_pipeline(req, out, RunOptions(until="depth", rerun_from="depth")).stages] == [
        "cached",
        "ran",
    ]
    assert [r.status for r in run_pipeline(req, out, RunOptions(until="depth", force=True)).stages] == ["ran", "ran"]
    # A changed parameter invalidates that stage and everything downstream, nothing upstream.
    forced = run_pipeline(req, out, RunOptions(until="depth", backends={"depth": "layout"}))
    assert [r.status for r in forced.stages] == ["cached", "ran"]
    # A tampered output is detected and rebuilt.
    (out / "depth.npz").write_bytes(b"junk")
    assert [
        r.status for r in run_pipeline(req, out, RunOptions(until="depth", backends={"depth": "layout"})).stages
    ] == ["cached", "ran"]


def test_changed_input_content_reruns(pano_files, tmp_path, rng):
    pano, depth = pano_files
    out = tmp_path / "out"
    req = Request(panorama=str(pano), depth=str(depth))
    run_pipeline(req, out, RunOptions(until="depth"))
    np.save(depth, rng.uniform(1, 5, (64, 128)).astype(np.float32))
    assert [r.status for r in run_pipeline(req, out, RunOptions(until="depth")).stages] == ["ran", "ran"]


def test_deterministic_bytes(pano_files, tmp_path):
    pano, _ = pano_files
    a = run_pipeline(Request(panorama=str(pano)), tmp_path / "a", RunOptions(until="depth"))
    b = run_pipeline(Request(panorama=str(pano)), tmp_path / "b", RunOptions(until="depth"))
    assert _outputs(a.out_dir) == _outputs(b.out_dir)


def test_stale_temp_files_removed(pano_files, tmp_path):
    pano, _ = pano_files
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{TMP_PREFIX}abc").write_bytes(b"torn")
    run_pipeline(Request(panorama=str(pano)), out, RunOptions(until="panorama"))
    assert not list(out.glob(f"{TMP_PREFIX}*"))


def test_failing_stage_writes_nothing(pano_files, tmp_path):
    def bad(ctx):
        return StageResult(artifacts={"gaussians": "not a cloud"})

    register_backend(Backend("gaussians", "test_bad", bad, "test backend returning a wrong type"))
    out = tmp_path / "out"
    with pytest.raises(TypeError):
        run_pipeline(
            Request(panorama=str(pano_files[0])), out, RunOptions(until="gaussians", backends={"gaussians": "test_bad"})
        )
    assert not (out / "gaussians.npz").exists()
    assert not list(out.glob(f"{TMP_PREFIX}*"))


def test_backend_cannot_write_outside(pano_files, tmp_path):
    register_backend(Backend("gaussians", "test_escape", lambda ctx: StageResult(files={"../evil.txt": b"x"}), "test"))
    with pytest.raises(OutputError, match="escapes"):
        run_pipeline(
            Request(panorama=str(pano_files[0])),
            tmp_path / "out",
            RunOptions(until="gaussians", backends={"gaussians": "test_escape"}),
        )
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "nothing to build"),
        ({"panorama": "missing.png"}, "does not exist"),
        ({"depth": "d.npy"}, "--depth needs --panorama"),
        ({"preset": "ultra"}, "unknown preset"),
        ({"prompt": "x", "panorama": "p.png"}, "drop it"),
        ({"image": "photo.jpg"}, "does not exist"),
    ],
)
def test_exception_bad_request(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        run_pipeline(Request(**kwargs), tmp_path / "out")


def test_exception_unknown_backend_and_option(pano_files, tmp_path):
    req = Request(panorama=str(pano_files[0]))
    with pytest.raises(InputError, match="unknown depth backend 'magic'"):
        run_pipeline(req, tmp_path / "o", RunOptions(backends={"depth": "magic"}))
    with pytest.raises(InputError, match="has no option"):
        run_pipeline(
            req, tmp_path / "o", RunOptions(until="depth", backends={"depth": "layout"}, options={"depth": {"nope": 1}})
        )
    with pytest.raises(InputError, match="unknown stage"):
        run_pipeline(req, tmp_path / "o", RunOptions(until="paint"))


def test_exception_unwritable_output(pano_files, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        run_pipeline(Request(panorama=str(pano_files[0])), blocker, RunOptions(until="panorama"))
    with pytest.raises(OutputError):
        run_pipeline(Request(panorama=str(pano_files[0])), blocker / "sub", RunOptions(until="panorama"))


def test_choose_backend_rules():
    assert choose_backend("panorama", Request(panorama="p.png"), set(), {}).name == "file"
    assert choose_backend("depth", Request(), {"panorama", "given_depth"}, {}).name == "given"
    assert (
        choose_backend("depth", Request(), {"panorama"}, {}).name == "prior"
    )  # the weight-free prior replaced layout as the default (issue 11)
    assert "layout" in [b.name for b in backends("depth")]
    assert get_backend("depth", "layout").make_config("fast", {"far": 50.0}).far == 50.0


def test_killed_run_resumes_byte_identical(pano_files, tmp_path):
    pano, depth = pano_files
    child = [sys.executable, str(HERE / "_pipeline_child.py"), str(pano), str(depth)]
    ref = tmp_path / "ref"
    subprocess.run(child + [str(ref)], check=True, timeout=120)
    out = tmp_path / "killed"
    proc = subprocess.Popen(child + [str(out), "30"])
    try:
        deadline = time.time() + 60
        # Wait until the depth stage is recorded, i.e. the slow gaussians stage is in flight.
        while time.time() < deadline:
            try:
                if "depth" in json.loads((out / MANIFEST).read_text())["stages"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        else:
            pytest.fail("child run never reached the gaussians stage")
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "gaussians.npz").exists()
    subprocess.run(child + [str(out)], check=True, timeout=120)
    m = json.loads((out / MANIFEST).read_text())
    assert m["stages"]["panorama"]["cached"] and m["stages"]["depth"]["cached"]
    assert not m["stages"]["gaussians"]["cached"]
    assert _outputs(out) == _outputs(ref)


def test_load_artifact(pano_files, tmp_path):
    from worldgen.pipeline import load_artifact

    pano, depth = pano_files
    run_pipeline(Request(panorama=str(pano), depth=str(depth)), tmp_path / "out", RunOptions(until="depth"))
    d = load_artifact(tmp_path / "out", "depth")
    assert d.shape == (64, 128) and d.sky[:8].all()
    with pytest.raises(InputError, match="no 'mesh'"):
        load_artifact(tmp_path / "out", "mesh")
    (tmp_path / "out" / "depth.npz").write_bytes(b"x")
    with pytest.raises(InputError, match="changed"):
        load_artifact(tmp_path / "out", "depth")
    with pytest.raises(InputError, match="no worldgen run"):
        load_artifact(tmp_path, "depth")
