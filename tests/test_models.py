"""Model configuration: worldgen.toml, --model, offline location, safetensors only, fingerprints, runner wiring."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from worldgen import registry
from worldgen.errors import InputError
from worldgen.io import encode_png
from worldgen.models import (
    ModelSpec,
    UserConfig,
    config_paths,
    fingerprint,
    load_user_config,
    locate_model,
    require_safetensors,
    resolve_models,
)
from worldgen.pipeline import RunOptions, attach_models, choose_backend, run_pipeline
from worldgen.registry import Backend, Request, StageResult


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No user's worldgen.toml or Hugging Face cache leaks into these tests."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HOME when it is imported; point its cache here for this test
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def _model_folder(path, weights=("model.safetensors",), config=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or {"model_type": "test"}))
    for w in weights:
        (path / w).write_bytes(b"\0" * 16)
    return path


def test_config_search_order(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    local, user = config_paths(tmp_path, env)
    assert local == tmp_path / "worldgen.toml" and user == tmp_path / "xdg" / "worldgen" / "worldgen.toml"
    assert load_user_config(tmp_path, env).path is None
    user.parent.mkdir(parents=True)
    user.write_text('[models]\ndepth = "org/user-depth"\n')
    assert load_user_config(tmp_path, env).models["depth"].source == "org/user-depth"
    local.write_text('[models]\ndepth = "org/local-depth"\n')
    cfg = load_user_config(tmp_path, env)
    assert cfg.path == local and cfg.models["depth"].source == "org/local-depth"
    # without XDG_CONFIG_HOME: ~/.config
    assert config_paths(tmp_path, {"HOME": "/h"})[1].as_posix() == "/h/.config/worldgen/worldgen.toml"


def test_toml_tables_and_relative_folders(tmp_path):
    _model_folder(tmp_path / "m" / "seg")
    (tmp_path / "worldgen.toml").write_text(
        "[models]\n"
        'depth = { source = "org/depth", revision = "v2", dtype = "float16" }\n'
        'segmentation = "./m/seg"\n'
        "[depth.layout]\nfar = 50.0\n"
    )
    cfg = load_user_config(tmp_path, {})
    d = cfg.models["depth"]
    assert (d.source, d.revision, dict(d.options)) == ("org/depth", "v2", {"dtype": "float16"})
    assert cfg.models["segmentation"].source == str((tmp_path / "m" / "seg").resolve())
    assert cfg.backend_options == {"depth": {"layout": {"far": 50.0}}}


@pytest.mark.parametrize(
    "text, match",
    [
        ("[models\n", "not valid TOML"),
        ('[models]\nshape = "x/y"\n', "unknown model role 'shape'"),
        ("[models]\ndepth = 3\n", "models.depth must be"),
        ("[models]\ndepth = { revision = 'a' }\n", "needs source"),
        ("title = 'x'\n", "neither \\[models\\] nor"),
    ],
)
def test_toml_errors_name_file_and_key(tmp_path, text, match):
    (tmp_path / "worldgen.toml").write_text(text)
    with pytest.raises(InputError, match=match) as e:
        load_user_config(tmp_path, {})
    assert "worldgen.toml" in str(e.value) and "\n" not in str(e.value)


def test_cli_items_win_over_the_file(tmp_path):
    user = UserConfig(None, {"depth": ModelSpec("depth", "org/a"), "fill": ModelSpec("fill", "org/f")})
    out = resolve_models(["depth=org/b"], user)
    assert out["depth"].source == "org/b" and out["fill"].source == "org/f"
    for bad in ("depth", "=x", "depth=", "colour=org/x"):
        with pytest.raises(InputError):
            resolve_models([bad], None)


def test_locate_local_folder_and_missing(tmp_path, monkeypatch):
    folder = _model_folder(tmp_path / "dm")
    assert locate_model(ModelSpec("depth", str(folder))) == folder.resolve()
    with pytest.raises(InputError, match="does not exist; check the path"):
        locate_model(ModelSpec("depth", str(tmp_path / "nope")))
    with pytest.raises(InputError, match="is a file"):
        locate_model(ModelSpec("depth", str(folder / "config.json")))
    # "models/typo" where ./models exists: a mistyped folder, not a Hugging Face id to fetch
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(InputError, match="folder 'models/typo' does not exist"):
        locate_model(ModelSpec("depth", "models/typo"))


def test_missing_hub_id_names_the_fetch_command():
    with pytest.raises(InputError) as e:
        locate_model(ModelSpec("depth", "depth-anything/Depth-Anything-V2-Small-hf"))
    msg = str(e.value)
    assert "hf download depth-anything/Depth-Anything-V2-Small-hf" in msg and "local folder" in msg
    assert "\n" not in msg


def test_hub_cache_is_found_offline(tmp_path):
    """A model already in the Hugging Face cache layout is located without any network."""
    repo = tmp_path / "hf" / "hub" / "models--org--tiny"
    snap = repo / "snapshots" / ("a" * 40)
    _model_folder(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    assert locate_model(ModelSpec("depth", "org/tiny")) == snap.resolve()


def test_only_safetensors(tmp_path):
    require_safetensors(_model_folder(tmp_path / "ok"))
    # a pickle beside safetensors is fine: the loaders ask for safetensors
    require_safetensors(_model_folder(tmp_path / "both", ("model.safetensors", "pytorch_model.bin")))
    with pytest.raises(InputError, match="only pickle weights \\(pytorch_model.bin\\)"):
        require_safetensors(_model_folder(tmp_path / "pickle", ("pytorch_model.bin",)))
    # diffusers layout: every component folder needs its safetensors
    pipe = tmp_path / "pipe"
    _model_folder(pipe / "unet")
    _model_folder(pipe / "vae", ("diffusion_pytorch_model.bin",))
    with pytest.raises(InputError, match="vae/diffusion_pytorch_model.bin"):
        require_safetensors(pipe)
    with pytest.raises(InputError, match="no .safetensors"):
        require_safetensors(_model_folder(tmp_path / "empty", ()))


def test_fingerprint_tracks_config_and_weights(tmp_path):
    a = _model_folder(tmp_path / "a")
    b = _model_folder(tmp_path / "b")
    assert fingerprint(a) == fingerprint(b)  # where it lies does not matter
    (b / "config.json").write_text(json.dumps({"model_type": "other"}))
    assert fingerprint(a) != fingerprint(b)
    c = _model_folder(tmp_path / "c")
    (c / "model.safetensors").write_bytes(b"\0" * 17)
    assert fingerprint(a) != fingerprint(c)
    (a / ".cache").mkdir()
    (a / ".cache" / "x.json").write_text("{}")
    assert fingerprint(a) == fingerprint(_model_folder(tmp_path / "d"))


# --- runner wiring, with a test backend that declares the "depth" role --------------------------


@dataclass(frozen=True)
class _Cfg:
    model: str = ""
    scale: float = 2.0


def _run_model_depth(ctx):
    from worldgen.types import DepthMap

    cfg = json.loads((__import__("pathlib").Path(ctx.config.model) / "config.json").read_text())
    h, w = ctx.inputs["panorama"].height, ctx.inputs["panorama"].width
    d = np.full((h, w), float(cfg.get("depth", 3.0)) * ctx.config.scale, np.float32)
    return StageResult(artifacts={"depth": DepthMap(d, np.zeros((h, w), bool))})


@pytest.fixture
def model_backend(monkeypatch):
    registry._load()
    b = Backend("depth", "testmodel", _run_model_depth, "test", config=_Cfg, models={"depth": "model"})
    # the test backend is the only one that declares the depth role here
    table = {"testmodel": b, **{k: v for k, v in registry._REGISTRY["depth"].items() if not v.models}}
    monkeypatch.setitem(registry._REGISTRY, "depth", table)
    return b


def test_choose_backend_prefers_a_configured_role(model_backend):
    req = Request(panorama="p.png")
    assert choose_backend("depth", req, {"panorama"}, {}, {"depth"}).name == "testmodel"
    assert choose_backend("depth", req, {"panorama"}, {}, set()).name != "testmodel"
    # given depth wins over a model; a forced backend wins over both
    assert choose_backend("depth", req, {"panorama", "given_depth"}, {}, {"depth"}).name == "given"
    assert choose_backend("depth", req, {"panorama"}, {"depth": "layout"}, {"depth"}).name == "layout"
    # a role no depth backend declares changes nothing
    assert choose_backend("depth", req, {"panorama"}, {}, {"fill"}).name != "testmodel"


def test_attach_models_fills_the_field(tmp_path, model_backend):
    folder = _model_folder(tmp_path / "dm")
    cfg, recs = attach_models(model_backend, _Cfg(), {"depth": ModelSpec("depth", str(folder))})
    assert cfg.model == str(folder.resolve()) and cfg.scale == 2.0
    assert recs["depth"] == {
        "role": "depth",
        "source": str(folder),
        "revision": None,
        "fingerprint": fingerprint(folder),
    }
    # a field set by the user (--set) names the model itself
    cfg2, recs2 = attach_models(model_backend, _Cfg(model=str(folder)), {})
    assert cfg2.model == str(folder.resolve()) and recs2["depth"]["source"] == str(folder)
    assert attach_models(model_backend, _Cfg(), {}) == (_Cfg(), {})
    with pytest.raises(InputError, match="only pickle"):
        attach_models(
            model_backend, _Cfg(), {"depth": ModelSpec("depth", str(_model_folder(tmp_path / "p", ("x.pt",))))}
        )


def test_run_records_models_and_keys_on_the_fingerprint(tmp_path, model_backend):
    pano = tmp_path / "p.png"
    pano.write_bytes(encode_png(np.full((8, 16, 3), 128, np.uint8)))
    folder = _model_folder(tmp_path / "dm", config={"depth": 3.0})
    opts = RunOptions(until="depth", models={"depth": ModelSpec("depth", str(folder))})
    r1 = run_pipeline(Request(panorama=str(pano)), tmp_path / "out", opts)
    entry = r1.manifest["stages"]["depth"]
    assert entry["backend"] == "testmodel" and entry["models"]["depth"]["fingerprint"] == fingerprint(folder)
    assert entry["config"]["model"] == str(folder.resolve())
    # the same model in another folder: cached; a changed config: re-run
    moved = _model_folder(tmp_path / "moved", config={"depth": 3.0})
    opts2 = dataclasses.replace(opts, models={"depth": ModelSpec("depth", str(moved))})
    r2 = run_pipeline(Request(panorama=str(pano)), tmp_path / "out", opts2)
    assert [s.status for s in r2.stages] == ["cached", "cached"]
    (moved / "config.json").write_text(json.dumps({"depth": 4.0}))
    r3 = run_pipeline(Request(panorama=str(pano)), tmp_path / "out", opts2)
    assert [s.status for s in r3.stages] == ["cached", "ran"]
    # worldgen.toml defaults apply to the backend they name, under --set
    opts3 = dataclasses.replace(opts2, defaults={"depth": {"testmodel": {"scale": 5.0}}})
    r4 = run_pipeline(Request(panorama=str(pano)), tmp_path / "out", opts3)
    assert r4.manifest["stages"]["depth"]["config"]["scale"] == 5.0
    opts4 = dataclasses.replace(opts3, options={"depth": {"scale": 1.0}})
    assert (
        run_pipeline(Request(panorama=str(pano)), tmp_path / "out", opts4).manifest["stages"]["depth"]["config"][
            "scale"
        ]
        == 1.0
    )


def test_cli_model_flag_and_info(tmp_path, model_backend, capsys, monkeypatch):
    from worldgen.cli.main import main

    pano = tmp_path / "p.png"
    pano.write_bytes(encode_png(np.full((8, 16, 3), 128, np.uint8)))
    folder = _model_folder(tmp_path / "dm")
    code = main(
        [
            "generate",
            "--panorama",
            str(pano),
            "--until",
            "depth",
            "-q",
            "-o",
            str(tmp_path / "o"),
            "--model",
            f"depth={folder}",
        ]
    )
    assert code == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["stages"]["depth"]["backend"] == "testmodel"
    capsys.readouterr()
    assert (
        main(["generate", "--panorama", str(pano), "-o", str(tmp_path / "o2"), "--model", "depth=org/absent-model"])
        == 2
    )
    err = capsys.readouterr().err
    assert "hf download org/absent-model" in err and not (tmp_path / "o2" / "depth.npz").exists()
    assert main(["generate", "--panorama", str(pano), "-o", str(tmp_path / "o3"), "--model", "colour=x"]) == 2
    assert "unknown model role 'colour'" in capsys.readouterr().err
    # worldgen.toml in the working folder; a bad option there names the file and the table
    (tmp_path / "worldgen.toml").write_text(f'[models]\ndepth = "{folder}"\n[depth.layout]\nfarr = 3\n')
    assert main(["generate", "--panorama", str(pano), "-o", str(tmp_path / "o4")]) == 2
    assert "worldgen.toml, table depth.layout: depth backend" in capsys.readouterr().err
    (tmp_path / "worldgen.toml").write_text(f'[models]\ndepth = "{folder}"\nfill = "org/absent"\n')
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "fill" in out and "org/absent" in out
    from worldgen.cli.info import check_configured_model

    assert "hf download org/absent" in check_configured_model(ModelSpec("fill", "org/absent"))
    assert check_configured_model(ModelSpec("depth", str(folder))).startswith("[yellow]found")
    checked = dataclasses.replace(model_backend, check_model=lambda p: None if (p / "config.json").exists() else "x")
    monkeypatch.setitem(registry._REGISTRY["depth"], "testmodel", checked)
    assert check_configured_model(ModelSpec("depth", str(folder))).startswith("[green]yes")
