"""Tiny random-weight diffusers pipelines, built offline from configs (no hub access).

They exercise the real diffusers code paths of the panorama backends (tokenizers, text encoders,
denoiser, VAE, schedulers, save_pretrained / from_pretrained) in a fraction of a second on a CPU.
Their pictures are noise-like: they test plumbing, seams and memory handling, never image quality.

Kinds:
    ``sd``: StableDiffusionPipeline (UNet2DConditionModel, AutoencoderKL, CLIP text encoder).
    ``sd-inpaint``: StableDiffusionInpaintPipeline (the same with a 9-channel UNet input).
    ``sdxl``: StableDiffusionXLPipeline (two CLIP text encoders, size/crop conditioning).
    ``sd3``: StableDiffusion3Pipeline (SD3Transformer2DModel, two CLIP encoders and T5).
    ``flux``: FluxPipeline (FluxTransformer2DModel, CLIP + T5 text encoders, flow-matching scheduler).
    ``flux-fill``: FluxFillPipeline (transformer input = latents + masked-image latents + mask).

Every VAE has four blocks, so its scale factor is 8 as in the published SD and FLUX VAEs (a one-block
VAE would hide latent-size bugs). Tokenizers are constructed from a character vocabulary written
here: CLIP's byte-level BPE with no merges, T5's as a word-level ``tokenizers`` model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError

TINY_KINDS: tuple[str, ...] = ("sd", "sd-inpaint", "sdxl", "sd3", "flux", "flux-fill")

_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-"
_HIDDEN = 32  # text-encoder width = cross-attention / joint-attention width
_LATENT = 4  # VAE latent channels
_VAE_BLOCKS = (16, 16, 16, 16)  # four blocks: scale factor 8


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in _CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # CLIP's end-of-text token must have the highest id
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.json").write_text(json.dumps(vocab))
        (Path(d) / "merges.txt").write_text("#version: 0.2\n")
        tok = CLIPTokenizer(str(Path(d) / "vocab.json"), str(Path(d) / "merges.txt"), model_max_length=77)
    return tok


def _t5_tokenizer():
    import tokenizers
    from tokenizers import models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for c in _CHARS:
        vocab[c] = len(vocab)
    core = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # One token per character: prompts of any words map into the small vocabulary.
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def _clip_text_encoder(tok, seed: int):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        hidden_size=_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=len(tok),
        max_position_embeddings=77,
        projection_dim=_HIDDEN,
        bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    return CLIPTextModel(cfg).eval()


def _vae(seed: int, flux: bool):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    n = len(_VAE_BLOCKS)
    kw: dict[str, Any] = {}
    if flux:  # FLUX's VAE has no quant convs and a shift factor
        kw = {"use_quant_conv": False, "use_post_quant_conv": False, "shift_factor": 0.0609, "scaling_factor": 1.5035}
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=_VAE_BLOCKS,
        layers_per_block=1,
        latent_channels=_LATENT,
        norm_num_groups=8,
        sample_size=64,
        **kw,
    ).eval()


def _sd(seed: int, inpaint: bool):
    import torch
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=9 if inpaint else _LATENT,
        out_channels=_LATENT,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()
    tok = _clip_tokenizer()
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    return cls(
        vae=_vae(seed + 1, flux=False),
        text_encoder=_clip_text_encoder(tok, seed + 2),
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sdxl(seed: int):
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=_LATENT,
        out_channels=_LATENT,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        # six size/crop numbers x 8 + the second encoder's pooled projection
        projection_class_embeddings_input_dim=6 * 8 + _HIDDEN,
        cross_attention_dim=2 * _HIDDEN,  # both encoders' hidden states, concatenated
        norm_num_groups=8,
    ).eval()
    tok = _clip_tokenizer()
    enc = _clip_text_encoder(tok, seed + 2)
    torch.manual_seed(seed + 3)
    enc2 = CLIPTextModelWithProjection(enc.config).eval()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    return StableDiffusionXLPipeline(
        vae=_vae(seed + 1, flux=False),
        text_encoder=enc,
        text_encoder_2=enc2,
        tokenizer=tok,
        tokenizer_2=tok,
        unet=unet,
        scheduler=scheduler,
    )


def _sd3(seed: int):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=_LATENT,
        out_channels=_LATENT,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=_HIDDEN,
        joint_attention_dim=2 * _HIDDEN,  # the CLIP pair's hidden states, concatenated (T5's are padded to it)
        pooled_projection_dim=2 * _HIDDEN,
    ).eval()
    tok = _clip_tokenizer()
    enc = CLIPTextModelWithProjection(_clip_text_encoder(tok, seed + 2).config).eval()
    torch.manual_seed(seed + 3)
    enc2 = CLIPTextModelWithProjection(enc.config).eval()
    t5_tok = _t5_tokenizer()
    t5 = _t5_encoder(t5_tok, seed + 4, width=2 * _HIDDEN)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae(seed + 1, flux=True),
        text_encoder=enc,
        tokenizer=tok,
        text_encoder_2=enc2,
        tokenizer_2=tok,
        text_encoder_3=t5,
        tokenizer_3=t5_tok,
    )


def _t5_encoder(tok, seed: int, width: int = _HIDDEN):
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(
        T5Config(
            vocab_size=len(tok),
            d_model=width,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()


def _flux(seed: int, fill: bool):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxPipeline, FluxTransformer2DModel

    packed = 4 * _LATENT  # latents are packed 2x2 into the channel axis
    scale = 2 ** (len(_VAE_BLOCKS) - 1)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        # FLUX Fill: latents, masked-image latents and the mask (one channel per VAE pixel, packed 2x2).
        in_channels=packed * 2 + 4 * scale * scale if fill else packed,
        out_channels=packed,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        pooled_projection_dim=_HIDDEN,
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    ).eval()
    clip_tok = _clip_tokenizer()
    t5_tok = _t5_tokenizer()
    t5 = _t5_encoder(t5_tok, seed + 3)
    cls = FluxFillPipeline if fill else FluxPipeline
    return cls(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(seed + 1, flux=True),
        text_encoder=_clip_text_encoder(clip_tok, seed + 2),
        tokenizer=clip_tok,
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        transformer=transformer,
    )


def build_tiny_pipeline(kind: str, seed: int = 0):
    """A tiny random-weight diffusers pipeline of ``kind`` (see :data:`TINY_KINDS`), on the CPU in float32.

    The same kind and seed give the same weights.
    """
    if kind not in TINY_KINDS:
        raise InputError(f"unknown tiny pipeline {kind!r}; kinds are {', '.join(TINY_KINDS)}")
    if kind == "sdxl":
        return _sdxl(seed)
    if kind == "sd3":
        return _sd3(seed)
    if kind.startswith("sd"):
        return _sd(seed, inpaint=kind == "sd-inpaint")
    return _flux(seed, fill=kind == "flux-fill")


def save_tiny_pipeline(kind: str, folder: str | os.PathLike, seed: int = 0) -> Path:
    """Build a tiny pipeline and save it with ``save_pretrained`` (safetensors) into ``folder``; returns it."""
    out = Path(folder)
    build_tiny_pipeline(kind, seed).save_pretrained(out, safe_serialization=True)
    return out


def save_tiny_lora(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A random LoRA for the tiny ``sd`` UNet (attention projections and resnet convolutions), saved
    as ``pytorch_lora_weights.safetensors`` in ``folder``; returns the file. Needs peft."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = _sd(0, inpaint=False).unet
    torch.manual_seed(seed)
    targets = ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]
    # init_lora_weights=False draws both factors at random, so the LoRA changes the output.
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights=False))
    out = Path(folder)
    StableDiffusionPipeline.save_lora_weights(
        out, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True
    )
    return out / "pytorch_lora_weights.safetensors"
