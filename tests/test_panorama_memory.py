"""Memory plans: sizes read from safetensors headers; GPU, offload, sequential, CPU, or a one-line error."""

import pytest

from worldgen.errors import InputError
from worldgen.panorama.memory import GIB, Footprint, apply_plan, estimate_activations, plan_memory, read_footprint

# FLUX.1-dev's published sizes: 11.9B transformer, CLIP-L, T5-XXL, VAE with 128..512 channels.
FLUX = Footprint(
    params={
        "transformer": 11_900_000_000,
        "text_encoder": 123_000_000,
        "text_encoder_2": 4_760_000_000,
        "vae": 84_000_000,
    },
    largest_tensor=131_000_000,
    denoiser="transformer",
    denoiser_width=3072,
    vae_channels=128,
    vae_scale=8,
    vae_tile=1024,
)


def plan(free_gib, host_gib=120, **kw):
    return plan_memory(FLUX, 2048, 1024, cuda_free=int(free_gib * GIB), host_available=int(host_gib * GIB), **kw)


def test_tiers_follow_the_free_memory():
    assert plan(80).placement == "gpu"
    p = plan(80, budget=24 * GIB)
    assert p.placement == "model_offload" and p.needed_gib <= 24
    p = plan(16)
    assert p.placement == "sequential_offload" and p.vae_tiling and p.needed_gib <= 16
    assert "sequential CPU offload" in p.describe() and "VAE tiling" in p.describe()
    assert plan(80, bf16_supported=False).dtype == "float16"
    assert plan(80).dtype == "bfloat16"


def test_cannot_fit_is_one_line():
    with pytest.raises(InputError) as e:
        plan(2)
    msg = str(e.value)
    assert "\n" not in msg and "cannot fit" in msg and "panorama.width=1024" in msg
    with pytest.raises(InputError, match="host memory"):
        plan(16, host_gib=8)  # offloading needs the weights in host memory
    with pytest.raises(InputError, match="host memory on the CPU"):
        plan_memory(FLUX, 512, 256, cuda_free=None, host_available=16 * GIB)


def test_cpu_plan():
    small = Footprint({"unet": 10**6, "vae": 10**5}, 10**5, "unet", 32, 32, 8, 512)
    p = plan_memory(small, 512, 256, cuda_free=None, host_available=4 * GIB)
    assert (p.device, p.placement, p.dtype) == ("cpu", "cpu", "float32")
    assert p.record()["notes"] == ["no CUDA GPU: running on the CPU (slow)"]


def test_activation_estimates_grow_with_size():
    a = estimate_activations(FLUX, 1024, 512, "bfloat16")
    b = estimate_activations(FLUX, 2048, 1024, "bfloat16")
    assert b.denoiser > 3 * a.denoiser - 12 * 512 * 3072 * 2 * 3 and b.vae_full == 4 * a.vae_full
    assert b.vae_tiled <= b.vae_full


def test_footprint_from_headers_matches_the_models(tmp_path):
    pytest.importorskip("diffusers")
    from worldgen.panorama.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("flux")
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    fp = read_footprint(tmp_path)
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        # parameters() counts tied weights (T5's shared embedding) once, as the file stores them
        assert fp.params[name] == sum(p.numel() for p in getattr(pipe, name).parameters()), name
    assert fp.denoiser == "transformer" and fp.vae_scale == 8 and fp.denoiser_width == 32


def test_footprint_errors(tmp_path):
    with pytest.raises(InputError, match="not a diffusers pipeline folder"):
        read_footprint(tmp_path)
    (tmp_path / "model_index.json").write_text('{"unet": ["diffusers", "UNet2DConditionModel"]}')
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x01")
    with pytest.raises(InputError, match="not a safetensors file"):
        read_footprint(tmp_path)


def test_apply_plan_on_the_cpu_switches_tiling():
    pytest.importorskip("diffusers")
    from worldgen.panorama.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd")
    p = plan_memory(
        Footprint({"unet": 10**6}, 10**5, "unet", 32, 32, 8, 512), 256, 128, cuda_free=None, host_available=8 * GIB
    )
    import dataclasses

    apply_plan(pipe, dataclasses.replace(p, vae_tiling=True, vae_slicing=True))
    assert pipe.vae.use_tiling and pipe.vae.use_slicing


def test_footprint_of_a_pipeline_in_memory_matches_its_files(tmp_path):
    pytest.importorskip("diffusers")
    from worldgen.panorama.memory import footprint_of
    from worldgen.panorama.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd")
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    assert footprint_of(pipe) == read_footprint(tmp_path)
