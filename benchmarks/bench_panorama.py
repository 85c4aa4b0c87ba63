"""Diffusers panoramas (worldgen/panorama): seconds per denoising step of the tiny random-weight
pipelines on the CPU (the test pipelines: what the plumbing costs, not a real model), and the
memory plan the backend picks for FLUX.1-dev's published sizes at 2048x1024 (estimates from the
parameter counts, not measurements). On a CUDA machine it also builds a FLUX-sized pipeline (the
published transformer and VAE configs, random bfloat16 weights: the compute of FLUX.1-dev) and
paints a 2048x1024 panorama in 28 steps within a 24 GiB budget, with the memory settings chosen
automatically (issue 14's target: <= 60 s, <= 24 GB); those rows are absent until it runs on a
GPU. Each CPU row's note gives the 1-minute load average when it started."""

from __future__ import annotations

import os
import time

from worldgen.panorama.diffusion import Job, run_job, torch_threads
from worldgen.panorama.memory import GIB, Footprint, footprint_of, plan_memory
from worldgen.panorama.tiny import build_tiny_pipeline

FLUX_DEV = Footprint(
    params={
        "transformer": 11_901_408_320,
        "text_encoder": 123_060_480,
        "text_encoder_2": 4_762_310_656,
        "vae": 83_819_683,
    },
    largest_tensor=131_596_288,
    denoiser="transformer",
    denoiser_width=3072,
    vae_channels=128,
    vae_scale=8,
    vae_tile=1024,
)


def _cpu_rows() -> list[dict]:
    rows = []
    for kind in ("sd", "flux"):
        pipe = build_tiny_pipeline(kind)
        fp = footprint_of(pipe)
        width, steps = 512, 20
        plan = plan_memory(fp, width, width // 2, cuda_free=None, host_available=8 * GIB)
        load = os.getloadavg()[0]
        with torch_threads(1):
            t0 = time.perf_counter()
            run_job(pipe, fp, plan, Job("a pine forest by a lake", "", width, steps, None, 1.0, 0))
            s = time.perf_counter() - t0
        rows.append(
            {
                "name": f"tiny {kind} pipeline, {width}x{width // 2}, {steps} steps, CPU (1 thread)",
                "value": round(s, 2),
                "unit": "s",
                "target": "",
                "ok": None,
                "note": f"{s / steps:.3f} s/step incl. decode; load {load:.1f} at start",
            }
        )
    for free, budget, what in ((80, None, "80 GiB free"), (80, 24, "24 GiB budget"), (16, None, "16 GiB free")):
        p = plan_memory(
            FLUX_DEV,
            2048,
            1024,
            cuda_free=free * GIB,
            host_available=120 * GIB,
            budget=None if budget is None else budget * GIB,
        )
        rows.append(
            {
                "name": f"FLUX.1-dev 2048x1024 plan, {what}",
                "value": p.needed_gib,
                "unit": "GiB (estimate)",
                "target": "",
                "ok": None,
                "note": p.describe(),
            }
        )
    return rows


def flux_sized_pipeline(mini: bool = False):
    """A FluxPipeline with FLUX.1's published transformer and VAE configs and random bfloat16 weights
    (the modules' own initialisation).

    The text encoders have FLUX's widths (CLIP 768, T5 4096) but one layer each: they run once
    per image. ``mini`` shrinks every size (to check this code on a CPU).
    """
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from worldgen.panorama.tiny import _clip_tokenizer, _t5_tokenizer

    clip_w, t5_w = (32, 64) if mini else (768, 4096)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=64,
            num_layers=1 if mini else 19,
            num_single_layers=1 if mini else 38,
            attention_head_dim=16 if mini else 128,
            num_attention_heads=2 if mini else 24,
            joint_attention_dim=t5_w,
            pooled_projection_dim=clip_w,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6) if mini else (16, 56, 56),
        )
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(16, 16, 16, 16) if mini else (128, 256, 512, 512),
            layers_per_block=1 if mini else 2,
            latent_channels=16,
            norm_num_groups=8 if mini else 32,
            sample_size=1024,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.1159,
            scaling_factor=0.3611,
        )
        clip_tok, t5_tok = _clip_tokenizer(), _t5_tokenizer()
        clip = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=clip_w,
                intermediate_size=4 * clip_w,
                num_hidden_layers=1,
                num_attention_heads=4 if mini else 12,
                vocab_size=len(clip_tok),
                projection_dim=clip_w,
                bos_token_id=clip_tok.convert_tokens_to_ids("<|startoftext|>"),
                eos_token_id=clip_tok.convert_tokens_to_ids("<|endoftext|>"),
                pad_token_id=clip_tok.convert_tokens_to_ids("<|endoftext|>"),
            )
        )
        t5 = T5EncoderModel(
            T5Config(
                vocab_size=len(t5_tok),
                d_model=t5_w,
                d_kv=64,
                d_ff=10240 if not mini else 128,
                num_layers=1,
                num_heads=64 if not mini else 2,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        )
    finally:
        torch.set_default_dtype(prev)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tok,
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        transformer=transformer,
    )


def _gpu_rows() -> list[dict]:
    import torch

    from worldgen.panorama.memory import probe_memory

    pipe = flux_sized_pipeline()
    fp = footprint_of(pipe)
    free, host, bf16, name = probe_memory()
    plan = plan_memory(fp, 2048, 1024, cuda_free=free, host_available=host, bf16_supported=bf16, budget=24 * GIB)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    image, facts = run_job(pipe, fp, plan, Job("a pine forest by a lake", "", 2048, 28, None, 1.0, 0))
    torch.cuda.synchronize()
    s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 1e9
    return [
        {
            "name": f"FLUX-sized random pipeline, 2048x1024, 28 steps, {name}",
            "value": round(s, 1),
            "unit": "s",
            "target": "<= 60 s",
            "ok": s <= 60,
            "note": f"plan: {plan.describe()}; seam {facts['seam']['method']}; image {image.shape[1]}x{image.shape[0]}",
        },
        {
            "name": f"FLUX-sized random pipeline, 2048x1024, peak GPU memory, {name}",
            "value": round(peak, 1),
            "unit": "GB",
            "target": "<= 24 GB",
            "ok": peak <= 24,
            "note": "torch.cuda.max_memory_allocated",
        },
    ]


def run() -> list[dict]:
    import torch

    rows = _cpu_rows()
    if torch.cuda.is_available():
        rows += _gpu_rows()
    return rows
