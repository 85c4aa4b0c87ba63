"""The diffusion inpainter of the hidden layer (worldgen/layers/diffusion.py), with a tiny random-weight
fill pipeline saved here: plumbing, exactness and determinism only (random weights paint noise)."""

import json

import numpy as np
import pytest

pytest.importorskip("diffusers")

from worldgen.cli.main import main  # noqa: E402
from worldgen.errors import InputError  # noqa: E402
from worldgen.io import encode_png  # noqa: E402
from worldgen.layers import LayerConfig, build_layers, inpaint  # noqa: E402
from worldgen.layers import diffusion as fill  # noqa: E402
from worldgen.panorama.tiny import save_tiny_pipeline  # noqa: E402
from worldgen.types import DepthMap, Panorama  # noqa: E402

# generate's previews at small sizes: no test here reads them (conftest.small_previews)
pytestmark = pytest.mark.usefixtures("small_previews")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_tiny_pipeline("sd-inpaint", tmp_path_factory.mktemp("models") / "sd-inpaint"))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill._MEMO.clear()  # each test paints for itself


def scene(h=64):
    """A striped panorama [h, 2h] with a red box at 1 m in front of walls at 4 m (one box crosses ±180°)."""
    w = 2 * h
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx % 8) / 8.0, yy / h, 0.5 + 0 * xx], -1).astype(np.float32)
    d = np.full((h, w), 4.0, np.float32)
    for rows, cols in ((slice(h // 3, 2 * h // 3), slice(w // 3, w // 2)), (slice(h // 3, h // 2), slice(-6, None))):
        img[rows, cols] = (0.9, 0.1, 0.1)
        d[rows, cols] = 1.0
    return img, d


def test_paints_the_hole_and_keeps_every_known_pixel(model):
    img, _ = scene()
    hole = np.zeros(img.shape[:2], bool)
    hole[20:40, 50:58] = True
    hole[28:32, -3:] = hole[28:32, :3] = True  # across the ±180° seam
    guide = np.zeros(hole.shape, np.float32)
    out, facts = fill.paint_hole(img, hole, guide, 3, model=model, steps=4)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.array_equal(out[~hole], img[~hole])  # bit for bit
    assert np.abs(out[hole] - img[hole]).mean() > 0.05  # the occluder's colour is gone
    prefill = inpaint("patchmatch", img, hole, guide, 3)
    assert not np.allclose(out[hole], prefill[hole], atol=1e-3)  # the model painted over the pre-fill
    assert facts["pipeline"] == "StableDiffusionInpaintPipeline" and facts["seam"]["method"] == "circular"
    assert facts["prompt"] == fill.NEUTRAL_PROMPT and facts["paint_size"] == [64, 128]
    # Deterministic for a seed (painted afresh, not from memory), different for another seed.
    fill._MEMO.clear()
    again = inpaint("diffusion", img, hole, guide, 3, model=model, steps=4)
    assert np.array_equal(again, out)
    other = inpaint("diffusion", img, hole, guide, 4, model=model, steps=4)
    assert not np.array_equal(other[hole], out[hole]) and np.array_equal(other[~hole], img[~hole])


def test_a_transformer_fill_pipeline_paints_across_the_seam(tmp_path):
    # FLUX Fill: absolute positions, so the seam is the latent wrap-blend, not circular convolutions.
    flux = str(save_tiny_pipeline("flux-fill", tmp_path / "flux-fill"))
    img, _ = scene()
    hole = np.zeros(img.shape[:2], bool)
    hole[24:40, -6:] = hole[24:40, :6] = True
    out, facts = fill.paint_hole(img, hole, None, 0, model=flux, steps=2)
    assert facts["pipeline"] == "FluxFillPipeline" and facts["seam"] == {"method": "blend", "extend_px": 32}
    assert np.array_equal(out[~hole], img[~hole]) and np.abs(out[hole] - img[hole]).mean() > 0.05


def test_a_grid_of_any_size_is_painted_at_a_model_size(model):
    img, _ = scene(50)  # 50 x 100: neither 2:1 in multiples of 32
    hole = np.zeros((50, 100), bool)
    hole[10:30, 40:52] = True
    out, facts = fill.paint_hole(img, hole, None, 0, model=model, steps=2)
    assert facts["paint_size"] == [48, 96] and out.shape == (50, 100, 3)
    assert np.array_equal(out[~hole], img[~hole]) and np.isfinite(out).all()


def test_without_a_model_the_error_names_the_option():
    img, d = scene(32)
    hole = np.zeros((32, 64), bool)
    hole[10:20, 20:30] = True
    with pytest.raises(InputError, match="--model fill="):
        inpaint("diffusion", img, hole, None, 0)
    pano, depth = Panorama(img, "srgb"), DepthMap(d, np.zeros(d.shape, bool))
    with pytest.raises(InputError, match="--model fill="):
        build_layers(pano, depth, LayerConfig(inpaint="diffusion"))
    # "auto" without a model stays weight-free
    assert build_layers(pano, depth, LayerConfig()).report["inpainter"] == "patchmatch"
    assert np.array_equal(inpaint("auto", img, hole, None, 0), inpaint("patchmatch", img, hole, None, 0))


def test_stages_on_other_grids_share_one_painting(model, monkeypatch):
    img, d = scene(64)
    pano, depth = Panorama(img, "srgb"), DepthMap(d, np.zeros(d.shape, bool))
    calls = []
    run = fill._run_model
    monkeypatch.setattr(fill, "_run_model", lambda *a: calls.append(a[2].shape) or run(*a))
    cfg = LayerConfig(walk_radius=2.0, fill_model=model, fill_steps=3)
    full = build_layers(pano, depth, cfg, seed=1)  # the canonical grid: the panorama's own 128 columns
    half = build_layers(pano, depth, LayerConfig(walk_radius=2.0, work_width=64, fill_model=model, fill_steps=3), 1)
    assert calls == [(64, 128)]  # the model ran once; the coarser stage resampled its painting
    assert full.report["inpainter"] == half.report["inpainter"] == "diffusion"
    assert full.report["fill"]["seconds"]["paint"] >= 0 and "reused_painting" in half.report["fill"]["seconds"]
    assert half.report["fill"]["stage_pixels_from_painting"] > 0.8
    mapped, covered = fill.resample_hidden(full.colour, full.hidden, half.shape)
    use = half.hidden & covered
    assert np.allclose(half.colour[use], mapped[use])
    # Known pixels of each grid are the grid's own colour.
    assert np.array_equal(full.colour[~full.hidden], img[~full.hidden])


def test_resample_hidden_never_mixes_in_unpainted_pixels():
    painted = np.zeros((32, 64, 3), np.float32)
    valid = np.zeros((32, 64), bool)
    valid[8:24, 10:30] = True
    valid[8:24, -4:] = valid[8:24, :4] = True  # across the seam
    painted[valid] = (0.2, 0.4, 0.6)
    painted[~valid] = (1.0, 0.0, 0.0)  # the occluder: must never show up
    for shape in ((16, 32), (64, 128)):
        out, covered = fill.resample_hidden(painted, valid, shape)
        assert covered.sum() > 0 and covered[:, 0].any()
        assert np.allclose(out[covered], (0.2, 0.4, 0.6), atol=1e-5)


def test_generate_with_a_fill_model_paints_the_hidden_layer(model, tmp_path, capsys):
    img, d = scene(64)
    (tmp_path / "pano.png").write_bytes(encode_png(np.round(img * 255).astype(np.uint8)))
    np.save(tmp_path / "depth.npy", d)
    base = ["generate", "--panorama", str(tmp_path / "pano.png"), "--depth", str(tmp_path / "depth.npy")]
    out = tmp_path / "out"
    # Balanced with a token refinement, so the splats build the hidden layer too.
    steps = ["--set", "mesh.fill_steps=3", "--set", "gaussians.fill_steps=3", "--set", "gaussians.cpu_iterations=2"]
    args = [*base, "--model", f"fill={model}", "-o", str(out), "--preset", "balanced", *steps, "-q"]
    assert main(args) == 0, capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    mesh = m["stages"]["mesh"]
    assert mesh["models"]["fill"]["source"] == model and len(mesh["models"]["fill"]["fingerprint"]) == 64
    assert m["stages"]["gaussians"]["models"]["fill"] == mesh["models"]["fill"]
    layers = mesh["report"]["layers"]
    assert layers["inpainter"] == "diffusion" and layers["hidden_pixels"] > 0
    assert layers["fill"]["pipeline"] == "StableDiffusionInpaintPipeline" and layers["fill"]["steps"] == 3
    # The splat stage painted first; the mesh used that same painting (the two assets agree).
    assert "reused_painting" in layers["fill"]["seconds"]
    assert (out / "world.glb").is_file() and (out / "splats.ply").is_file()
    # Asking for the diffusion inpainter without a fill model: one line, before any stage runs.
    bad = tmp_path / "bad"
    code = main([*base, "-o", str(bad), "--preset", "fast", "--set", "mesh.inpaint=diffusion", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--model fill=" in err, err
    assert not (bad / "manifest.json").exists()
