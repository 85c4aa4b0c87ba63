"""The diffusers and photo panorama backends through the CLI, on the CPU, with tiny pipelines saved here."""

import hashlib
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from worldgen.cli.main import main  # noqa: E402
from worldgen.geometry.photo import place_photo  # noqa: E402
from worldgen.io import encode_png  # noqa: E402
from worldgen.panorama.seam import seam_continuity  # noqa: E402
from worldgen.panorama.tiny import save_tiny_lora, save_tiny_pipeline  # noqa: E402

# generate's previews at small sizes: no test here reads them (conftest.small_previews)
pytestmark = pytest.mark.usefixtures("small_previews")

SMALL = ["--preset", "fast", "--set", "panorama.width=256", "--set", "panorama.steps=3", "-q"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    out = {kind: save_tiny_pipeline(kind, root / kind) for kind in ("sd", "flux", "sd-inpaint", "flux-fill")}
    out["lora"] = save_tiny_lora(root / "lora")
    return out


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    # No worldgen.toml from the developer's folders, and no hub access.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def seamless(image) -> bool:
    m = seam_continuity(image)
    return m["seam_corr"] >= 0.8 * m["adjacent_corr"] and m["seam_l1"] <= 1.5 * m["adjacent_l1"]


def read_png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_text_to_world(models, tmp_path, capsys):
    out = tmp_path / "forest"
    args = ["generate", "a pine forest by a lake", "--model", f"panorama={models['sd']}", "-o", str(out), "--seed", "7"]
    args += ["--set", "panorama.negative_prompt=blurry", "--set", f'panorama.loras=["{models["lora"]}:0.5"]']
    assert main(args + SMALL) == 0, capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    st = m["stages"]
    assert st["panorama"]["backend"] == "diffusers"
    assert all(not st[s]["cached"] for s in ("panorama", "depth", "gaussians", "mesh", "export"))
    for name in ("panorama.png", "depth.npz", "gaussians.npz", "mesh.npz", "world.glb"):
        assert (out / name).is_file(), name
    rep = st["panorama"]["report"]
    assert rep["prompt"] == "a pine forest by a lake" and rep["negative_prompt"] == "blurry"
    assert (rep["steps"], rep["seed"], rep["guidance"], rep["width"], rep["height"]) == (3, 7, 7.5, 256, 128)
    lora = {"source": str(models["lora"]), "scale": 0.5, "file": "pytorch_lora_weights.safetensors"}
    assert rep["loras"] == [{**lora, "sha256": hashlib.sha256(models["lora"].read_bytes()).hexdigest()}]
    assert rep["pipeline"] == "StableDiffusionPipeline" and rep["seam"]["method"] == "circular"
    assert rep["negative_prompt_used"] is True
    assert rep["memory"]["placement"] == "cpu" and rep["memory"]["dtype"] == "float32"
    assert st["panorama"]["models"]["panorama"]["source"] == str(models["sd"])
    assert len(st["panorama"]["models"]["panorama"]["fingerprint"]) == 64
    pano = read_png(out / "panorama.png")
    assert pano.shape == (128, 256, 3)
    assert seamless(pano.astype(np.float32)), seam_continuity(pano)
    # the same command reuses the cached stage; a new folder with the same seed gives the same bytes
    again = tmp_path / "again"
    assert main([*args[:5], str(again), *args[6:], *SMALL, "--until", "panorama"]) == 0
    assert (again / "panorama.png").read_bytes() == (out / "panorama.png").read_bytes()


def test_flux_text_to_panorama(models, tmp_path, capsys):
    # Up to the panorama only: the stages after it read a Panorama whichever pipeline painted it,
    # and test_text_to_world builds the whole world from a diffusers panorama (the four stages
    # after it were two thirds of this test's time).
    out = tmp_path / "flux"
    args = ["generate", "a desert canyon", "--model", f"panorama={models['flux']}", "-o", str(out)]
    assert main(args + SMALL + ["--until", "panorama"]) == 0
    rep = json.loads((out / "manifest.json").read_text())["stages"]["panorama"]["report"]
    assert rep["pipeline"] == "FluxPipeline" and rep["seam"]["method"] == "blend" and rep["seam"]["extend_px"] == 32
    assert rep["guidance"] == 3.5 and rep["negative_prompt_used"] is False  # none given
    assert seamless(read_png(out / "panorama.png").astype(np.float32))


# sd-inpaint builds the whole world from the outpainted photo; flux-fill stops after the panorama,
# which is all that depends on the fill pipeline (the later stages read a Panorama either way).
@pytest.mark.parametrize("kind, until", [("sd-inpaint", "export"), ("flux-fill", "panorama")])
def test_photo_to_world_keeps_the_photo(kind, until, models, tmp_path, rng, capsys):
    yy, xx = np.mgrid[0:48, 0:64]
    photo = np.stack([xx * 4, yy * 5, 255 - xx * 2], -1).astype(np.uint8)
    photo[10:30, 20:44] = rng.integers(0, 256, (20, 24, 3))
    (tmp_path / "photo.png").write_bytes(encode_png(photo))
    out = tmp_path / "room"
    args = ["generate", "--image", str(tmp_path / "photo.png"), "--fov", "70", "--model", f"fill={models[kind]}"]
    assert main(args + ["-o", str(out), "--until", until] + SMALL) == 0, capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    assert ("export" in m["stages"]) == (until == "export")
    st = m["stages"]["panorama"]
    assert st["backend"] == "outpaint" and st["models"]["fill"]["source"] == str(models[kind])
    rep = st["report"]
    assert (rep["fov_deg"], rep["fov_source"], rep["photo_size"]) == (70.0, "--fov", [64, 48])
    placed, covered = place_photo(photo, 70.0, 256)
    pano = read_png(out / "panorama.png")
    assert covered.sum() == rep["photo_pixels_kept"] > 500
    assert np.array_equal(pano[covered], placed[covered])  # the photo's pixels, unchanged
    assert np.array_equal(read_png(out / "photo_mask.png")[..., 0] > 0, covered)
    assert not np.array_equal(pano[~covered], np.zeros_like(pano[~covered]))  # the rest was painted
    assert seamless(pano.astype(np.float32))
    assert (out / "world.glb").is_file() == (until == "export")


def one_line_error(capsys, code):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_bad_models_are_refused_in_one_line(models, tmp_path, capsys):
    out = str(tmp_path / "o")
    gen = ["generate", "a lake", "-o", out]
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={tmp_path / 'nowhere'}"] + SMALL))
    assert "does not exist" in err
    # pickled weights only: refused before anything is unpickled
    pickled = tmp_path / "pickled"
    shutil.copytree(models["sd"], pickled)
    for f in pickled.rglob("*.safetensors"):
        f.rename(f.with_name("diffusion_pytorch_model.bin"))
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={pickled}"] + SMALL))
    assert "pickle" in err
    # corrupt weights, a LoRA for another model, a LoRA that is not there
    broken = tmp_path / "broken"
    shutil.copytree(models["sd"], broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4000])
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={broken}"] + SMALL))
    assert "cannot load the diffusers pipeline" in err
    # weights saved under names this version does not expect would load as random values
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(models["sd"], partial)
    tensors = load_file(partial / "text_encoder" / "model.safetensors")
    del tensors[next(k for k in tensors if k.endswith("layers.1.mlp.fc1.weight"))]
    save_file(tensors, partial / "text_encoder" / "model.safetensors", metadata={"format": "pt"})
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={partial}"] + SMALL))
    assert "partial/text_encoder lacks 1184 of its parameters" in err
    flux = ["--model", f"panorama={models['flux']}", *SMALL]
    err = one_line_error(capsys, main(gen + flux + ["--set", f'panorama.loras=["{models["lora"]}"]']))
    assert "matches no layer of FluxPipeline" in err
    err = one_line_error(capsys, main(gen + flux + ["--set", 'panorama.loras=["./absent.safetensors:0.5"]']))
    assert "LoRA file './absent.safetensors' does not exist" in err
    # a folder that is not a pipeline
    lone = tmp_path / "lone"
    shutil.copytree(models["sd"] / "unet", lone)
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={lone}"] + SMALL))
    assert "not a diffusers pipeline folder" in err
    # a fill pipeline in the text role, and the photo backend without a fill model
    err = one_line_error(capsys, main(gen + ["--model", f"panorama={models['sd-inpaint']}"] + SMALL))
    assert "--model fill=" in err
    (tmp_path / "p.png").write_bytes(encode_png(np.full((16, 16, 3), 128, np.uint8)))
    photo = ["generate", "--image", str(tmp_path / "p.png"), "-o", out, "--backend", "panorama=outpaint"]
    err = one_line_error(capsys, main(photo + SMALL))
    assert "turning a photo into a 360° panorama needs an inpainting/fill pipeline: give --model fill=ID|PATH" in err
    err = one_line_error(capsys, main(gen + ["--backend", "panorama=diffusers"] + SMALL))
    assert "--model panorama=ID|PATH" in err
    err = one_line_error(
        capsys, main(gen + ["--model", f"panorama={models['sd']}", *SMALL, "--set", "panorama.width=100"])
    )
    assert "multiple of 32" in err
    assert not list((tmp_path / "o").glob("*.png"))


def test_info_shows_whether_the_model_loads(models, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["info", "--model", f"panorama={models['flux']}", "--model", f"fill={models['sd']}"]) == 0
    text = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 3}
    assert "yes" in rows["panorama"] and "panorama/diffusers" in rows["panorama"]
    assert "no" in rows["fill"] and "not a fill/inpainting pipeline" in rows["fill"]


def test_info_checks_large_models_without_loading_them(models, monkeypatch):
    from worldgen.panorama import backend

    monkeypatch.setattr(backend, "INFO_LOAD_LIMIT", 0)
    monkeypatch.setattr("worldgen.panorama.diffusion.load_pipeline", lambda *a, **k: pytest.fail("loaded"))
    text, fill = backend._check_model("panorama"), backend._check_model("fill")
    assert text(models["flux"]) is None and fill(models["flux-fill"]) is None
    assert fill(models["sd"]) == "StableDiffusionPipeline is not a fill/inpainting pipeline"
    assert text(models["sd-inpaint"]) == "StableDiffusionInpaintPipeline is not a text-to-image pipeline"


def test_worldgen_toml_configures_model_and_options(models, tmp_path, capsys):
    (tmp_path / "worldgen.toml").write_text(
        f'[models]\npanorama = "{models["flux"]}"\n\n'
        '[panorama.diffusers]\nwidth = 128\nsteps = 2\nnegative_prompt = "fog"\nseam_extend = 48\n'
    )
    out = tmp_path / "toml"
    assert main(["generate", "a harbour at dusk", "-o", str(out), "--until", "panorama", "-q"]) == 0
    st = json.loads((out / "manifest.json").read_text())["stages"]["panorama"]
    assert st["backend"] == "diffusers" and st["models"]["panorama"]["source"] == str(models["flux"])
    rep = st["report"]
    assert (rep["width"], rep["steps"], rep["negative_prompt"], rep["seam"]["extend_px"]) == (128, 2, "fog", 48)
    assert rep["negative_prompt_used"] is False  # FLUX uses it only with true_cfg > 1
    assert read_png(out / "panorama.png").shape == (64, 128, 3)


def test_progress_says_where_it_runs_and_the_time_left(models, tmp_path):
    from worldgen.models import resolve_models
    from worldgen.pipeline import RunOptions, run_pipeline
    from worldgen.registry import Request

    seen = []
    opts = RunOptions(
        until="panorama",
        models=resolve_models([f"panorama={models['sd']}"]),
        options={"panorama": {"width": 128, "steps": 2}},
    )
    run_pipeline(Request(prompt="a lake", preset="fast"), tmp_path / "p", opts, progress=lambda s, f, m: seen.append(m))
    assert any(m.startswith("on the CPU, float32") for m in seen), seen  # the memory plan, before loading
    assert "step 2/2 on the CPU (slow)" in " | ".join(seen) and any(m.endswith("s left") for m in seen)


def _cache(root, repo_id, source):
    """Put a folder into the Hugging Face cache layout under ``root``, as `hf download` leaves it."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / ("b" * 40)
    shutil.copytree(source, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("b" * 40)


def test_hub_ids_from_the_local_cache(models, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read at import; point it here
    _cache(cache, "org/tiny-sd", models["sd"])
    _cache(cache, "org/pano-lora", models["lora"].parent)
    out = tmp_path / "hub-run"
    args = ["generate", "a cave", "--model", "panorama=org/tiny-sd", "-o", str(out), "--until", "panorama"]
    assert main([*args, *SMALL, "--set", 'panorama.loras=["org/pano-lora:0.7"]']) == 0, capsys.readouterr().err
    st = json.loads((out / "manifest.json").read_text())["stages"]["panorama"]
    assert st["models"]["panorama"]["source"] == "org/tiny-sd"
    assert st["report"]["loras"][0]["source"] == "org/pano-lora" and st["report"]["loras"][0]["scale"] == 0.7
    err = one_line_error(capsys, main([*args, *SMALL, "--set", 'panorama.loras=["org/absent-lora"]']))
    assert "LoRA model 'org/absent-lora' is not in the local Hugging Face cache" in err and "hf download" in err
