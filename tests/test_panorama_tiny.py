"""Tiny random-weight pipelines: built offline, saved and loaded back with identical weights."""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

from worldgen.errors import InputError  # noqa: E402
from worldgen.panorama.tiny import TINY_KINDS, build_tiny_pipeline, save_tiny_pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # Any attempt to reach the hub fails instead of hanging or downloading.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hf-cache")


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_round_trip(kind, tmp_path):
    from diffusers import DiffusionPipeline

    built = build_tiny_pipeline(kind, seed=3)
    folder = save_tiny_pipeline(kind, tmp_path / kind, seed=3)
    assert not list(folder.rglob("*.bin")), "weights must be saved as safetensors only"
    loaded = DiffusionPipeline.from_pretrained(folder, use_safetensors=True, local_files_only=True)
    assert type(loaded) is type(built)
    for name in ("vae", "text_encoder", "unet" if getattr(built, "unet", None) is not None else "transformer"):
        a, b = getattr(built, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # The VAE downsamples 8x, as the published SD and FLUX VAEs do.
    assert 2 ** (len(loaded.vae.config.block_out_channels) - 1) == 8
    # Tokenizers were built here and survive the round trip.
    ids = loaded.tokenizer("a pine forest").input_ids
    assert ids == built.tokenizer("a pine forest").input_ids and len(ids) > 3


def test_same_seed_same_weights():
    a = build_tiny_pipeline("flux", seed=1).transformer.state_dict()
    b = build_tiny_pipeline("flux", seed=1).transformer.state_dict()
    c = build_tiny_pipeline("flux", seed=2).transformer.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_unknown_kind():
    with pytest.raises(InputError, match="unknown tiny pipeline 'kandinsky'"):
        build_tiny_pipeline("kandinsky")
