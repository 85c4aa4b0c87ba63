"""The "assets" export backend, engine presets, re-export of a run folder and the two CLI commands."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from _exporters_data import cloud, mesh_scene, needs_node, needs_nvidia
from typer.testing import CliRunner

from worldgen.artifacts import encode_artifact
from worldgen.errors import InputError
from worldgen.exporters import ENGINES, available_formats, export_assets, export_run, get_engine, resolve
from worldgen.registry import Request, StageContext, get_backend


def _ctx(inputs, **cfg):
    b = get_backend("export", "assets")
    return b, StageContext("export", inputs, Request(), b.make_config("balanced", cfg))


def test_backend_default_set_and_missing_inputs():
    b, ctx = _ctx({"mesh": mesh_scene(), "gaussians": cloud(20)})
    res = b.run(ctx)
    assert set(res.files) == {"world.glb", "world.usdz", "splats.ply", "splats.spz", "sky.png", "sky.hdr"}
    assert res.report["engine"] == "default" and res.report["splats"] == 20
    b, ctx = _ctx({"mesh": mesh_scene()}, formats=("glb", "ply"))
    res = b.run(ctx)
    assert set(res.files) == {"world.glb", "sky.png", "sky.hdr"} and "ply" in res.report["skipped"]
    b, ctx = _ctx({})
    with pytest.raises(InputError, match="mesh or gaussians"):
        b.run(ctx)


def test_backend_rejects_unknown_format_and_engine():
    b, ctx = _ctx({"gaussians": cloud(5)}, formats=("fbx",))
    with pytest.raises(InputError, match="choose from: glb"):
        b.run(ctx)
    with pytest.raises(InputError, match="unity"):
        get_engine("cryengine")


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_preset_exports(engine):
    files, report = export_assets(mesh_scene(), cloud(10), get_engine(engine).formats, resolve(engine))
    assert files and not report["skipped"]
    assert all(f in available_formats() for f in get_engine(engine).formats)


def test_user_override_beats_preset():
    assert resolve("web").spz_version == 3 and resolve("web", spz_version=2).spz_version == 2
    assert resolve("unreal").collision_prefix == "UCX_"
    with pytest.raises(InputError, match="options are"):
        resolve("unity", colour="red")


def _run_dir(tmp_path, mesh=True, splats=True):
    d = tmp_path / "run"
    d.mkdir()
    if mesh:
        (d / "mesh.npz").write_bytes(encode_artifact("mesh", mesh_scene()))
    if splats:
        (d / "gaussians.npz").write_bytes(encode_artifact("gaussians", cloud(30)))
    return d


def test_export_run_writes_from_stored_artifacts(tmp_path):
    d = _run_dir(tmp_path)
    written, report = export_run(d, ["usda", "splat"], None)
    names = sorted(p.relative_to(d).as_posix() for p in written)
    assert names == [
        "sky.hdr",
        "sky.png",
        "splats.splat",
        "world.usda",
        "world_textures/sky_basecolor.jpg",
        "world_textures/sky_latlong.png",
        "world_textures/world_basecolor.jpg",
    ]
    assert len((d / "splats.splat").read_bytes()) == 30 * 32
    with pytest.raises(InputError, match="does not exist"):
        export_run(tmp_path / "nope")
    with pytest.raises(InputError, match="choose from"):
        export_run(d, ["obj"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="neither mesh.npz nor gaussians.npz"):
        export_run(empty)


def _app():
    from worldgen.cli.assets import export_command, validate_command

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("validate")(validate_command)
    return app


@needs_node
@needs_nvidia
@pytest.mark.validators
def test_cli_export_then_validate(tmp_path):
    d = _run_dir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(
        _app(), ["export", str(d), "--engine", "web", "-f", "glb", "-f", "splat-glb", "-f", "spz", "-f", "splat-usdz"]
    )
    assert res.exit_code == 0, res.output
    assert (d / "splats.glb").is_file() and (d / "collision.glb").is_file()
    res = runner.invoke(_app(), ["validate", str(d)])
    assert res.exit_code == 0, res.output
    assert "splats.usdz" in res.output and "VG.035" in res.output
    # Break one asset: validation must fail with exit code 1.
    glb = bytearray((d / "world.glb").read_bytes())
    glb[24:28] = b"XXXX"  # corrupt the JSON chunk
    (d / "world.glb").write_bytes(bytes(glb))
    res = runner.invoke(_app(), ["validate", str(d)])
    assert res.exit_code == 1


def test_cli_validate_missing_folder_is_input_error(tmp_path):
    res = CliRunner().invoke(_app(), ["validate", str(tmp_path / "missing")])
    assert isinstance(res.exception, InputError)


def test_glb_has_no_nan_even_for_degenerate_normals():
    from worldgen.exporters import export_glb
    from worldgen.types import Mesh, MeshScene

    v = np.zeros((3, 3), np.float32)  # a degenerate triangle: normals fall back to +Y
    data = export_glb(MeshScene({"world": Mesh(v, np.array([[0, 1, 2]]))}))
    assert b"NaN" not in data and b"Infinity" not in data
