"""Loading a diffusers pipeline folder and running it to paint a seamless 2:1 equirect.

Supported: UNet pipelines (Stable Diffusion 1.x/2.x, SDXL and their inpainting variants) and
transformer pipelines with a 2-D KL VAE (FLUX, FLUX Fill, SD3), whatever class ``model_index.json``
names. The pipeline runs to latents (``output_type="latent"``); decoding happens here, so the VAE
sees the panorama as periodic in width (see :mod:`worldgen.panorama.seam`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, WorldgenError
from .memory import Footprint, MemoryPlan, apply_plan
from .seam import LatentLayout, WrapBlend, circular_convs

log = logging.getLogger(__name__)

SEAM_MODES = ("auto", "circular", "blend", "none")
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@dataclass(frozen=True)
class Lora:
    """A LoRA to apply: its safetensors file and its scale."""

    source: str
    scale: float
    file: Path


def parse_loras(items: tuple[str, ...] | list[str]) -> list[Lora]:
    """Read ``SOURCE[:SCALE]`` items: SOURCE is a .safetensors file, a folder holding one, or a cached HF id."""
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"LoRA {item!r} must be 'PATH-or-ID[:SCALE]', e.g. my_lora.safetensors:0.8")
        source, scale = item.strip(), 1.0
        head, sep, tail = source.rpartition(":")
        if sep and head:
            with contextlib.suppress(ValueError):
                scale, source = float(tail), head
        if not math.isfinite(scale):
            raise InputError(f"LoRA {item!r}: the scale must be a finite number")
        out.append(Lora(source, scale, _locate_lora(source)))
    return out


def _locate_lora(source: str) -> Path:
    from ..models import ModelSpec, locate_model

    p = Path(source).expanduser()
    if p.is_file():
        if p.suffix != ".safetensors":
            raise InputError(f"LoRA {source!r} is not a .safetensors file; worldgen loads safetensors only")
        return p.resolve()
    if source.endswith(".safetensors") or source.startswith(("/", "./", "../", "~")):
        raise InputError(f"LoRA file {source!r} does not exist; check the path")
    # An id: the message of a miss names the fetch command ("LoRA model 'org/x' is not in the local ...").
    folder = p if p.is_dir() else locate_model(ModelSpec("LoRA", source, origin="LoRA"))
    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        what = "no .safetensors file" if not files else f"{len(files)} .safetensors files"
        raise InputError(f"LoRA {source!r} holds {what}; name the LoRA's .safetensors file itself")
    return files[0].resolve()


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the body with ``n`` torch CPU threads (None: unchanged), restoring the count after."""
    import torch

    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def release_memory() -> None:
    """Collect the pipeline just dropped (offload hooks hold reference cycles) and return CUDA's cached blocks."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _quiet_libraries() -> None:
    """diffusers/transformers log deprecations and progress bars for every load; worldgen reports its own."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_pipeline(folder: str | Path, dtype: str = "float32", loras: list[Lora] | None = None):
    """Load a diffusers pipeline folder offline, safetensors only, on the CPU in ``dtype``.

    Raises:
        InputError: one line, for a folder that is not a loadable diffusers pipeline.
    """
    import torch
    from diffusers import DiffusionPipeline

    from ..models import require_safetensors

    root = Path(folder)
    require_safetensors(root)
    if not (root / "model_index.json").is_file():
        raise InputError(
            f"{root} has no model_index.json: not a diffusers pipeline folder (save it with save_pretrained)"
        )
    _quiet_libraries()
    want = getattr(torch, _DTYPES[dtype])
    try:
        with warnings.catch_warnings():
            # diffusers >= 0.36 renames torch_dtype to dtype and warns; older releases ignore dtype=.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = DiffusionPipeline.from_pretrained(
                str(root), torch_dtype=want, use_safetensors=True, local_files_only=True
            )
    except Exception as e:  # any failure to load means: not a loadable pipeline folder
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot load the diffusers pipeline in {root}: {first[:300]}") from e
    pipe.set_progress_bar_config(disable=True)
    _check_supported(pipe, root)
    _check_complete(pipe, root)
    den = getattr(pipe, "unet", None) or pipe.transformer
    if den.dtype != want:
        raise InputError(f"{root.name} loaded in {den.dtype}, not {want}; this diffusers release ignores the dtype")
    for i, lora in enumerate(loras or []):
        try:
            pipe.load_lora_weights(str(lora.file.parent), weight_name=lora.file.name, adapter_name=f"lora{i}")
        except Exception as e:  # a LoRA that does not fit this pipeline
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot apply LoRA {lora.source!r} to {root.name}: {first[:300]}") from e
        present = {name for names in pipe.get_list_adapters().values() for name in names}
        if f"lora{i}" not in present:
            raise InputError(
                f"LoRA {lora.source!r} matches no layer of {type(pipe).__name__}: it was made for another model"
            )
    if loras:
        pipe.set_adapters([f"lora{i}" for i in range(len(loras))], adapter_weights=[lo.scale for lo in loras])
    return pipe


def _check_complete(pipe, root: Path) -> None:
    """Refuse components with parameters their files do not hold: the loaders fill those with random
    values and only log a warning (e.g. weight names saved under another prefix by another version)."""
    from torch import nn

    from .memory import read_footprint

    on_disk = read_footprint(root).params
    for name, module in pipe.components.items():
        if not isinstance(module, nn.Module) or name not in on_disk:
            continue
        missing = sum(p.numel() for p in module.parameters()) - on_disk[name]
        if missing > 0:
            raise InputError(
                f"{root.name}/{name} lacks {missing} of its parameters in its weight files (they would be random): "
                "re-save the pipeline with the diffusers/transformers versions that load it"
            )


def _check_supported(pipe, root: Path) -> None:
    vae = getattr(pipe, "vae", None)
    den = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    ok = den is not None and vae is not None and hasattr(vae, "decode") and hasattr(vae.config, "scaling_factor")
    if ok and getattr(vae.config, "block_out_channels", None) and getattr(vae.config, "latent_channels", None):
        return
    raise InputError(
        f"{root.name} holds a {type(pipe).__name__}, which the panorama backends do not support; "
        "use a Stable Diffusion (1.x/2.x/XL), FLUX or SD3 pipeline, or their inpainting/fill variants"
    )


def is_fill_pipeline(pipe) -> bool:
    """True for inpainting/fill pipelines (they take ``mask_image``)."""
    return "mask_image" in inspect.signature(pipe.__call__).parameters


def default_guidance(pipe) -> float | None:
    p = inspect.signature(pipe.__call__).parameters.get("guidance_scale")
    return None if p is None or p.default is inspect.Parameter.empty else float(p.default)


@dataclass(frozen=True)
class Job:
    """One generation.

    Args:
        prompt, negative_prompt: text ("" for none).
        width: panorama width, pixels (height = width / 2); a multiple of 32.
        steps: denoising steps.
        guidance: guidance scale (None: the pipeline's default).
        true_cfg: FLUX's true classifier-free guidance scale (used with a negative prompt when > 1).
        seed: random seed; noise is drawn on the CPU so a seed means the same noise on every device.
        seam: one of :data:`SEAM_MODES`.
        seam_extend: latent extension for "blend", pixels (0: width / 16, at least 32).
        image: known pixels for fill pipelines, [H, W, 3] float in [0, 1], or None.
        mask: True where the model paints (fill pipelines). [H, W] bool
    """

    prompt: str
    negative_prompt: str
    width: int
    steps: int
    guidance: float | None
    true_cfg: float
    seed: int
    seam: str = "auto"
    seam_extend: int = 0
    image: np.ndarray | None = None
    mask: np.ndarray | None = None


def run_job(
    pipe,
    fp: Footprint,
    plan: MemoryPlan,
    job: Job,
    on_step: Callable[[int, int, float], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Paint a panorama with a loaded pipeline.

    Args:
        pipe: from :func:`load_pipeline`, not yet placed (this applies ``plan``).
        on_step: called with (steps done, total steps, seconds per step so far).

    Returns:
        A tuple: **image** [W/2, W, 3] float32 sRGB in [0, 1], and **facts** for the manifest
        (seam method and extension, guidance used...).
    """
    import torch

    width, height = job.width, job.width // 2
    if job.width % 32 or job.width < 64:
        raise InputError(f"panorama.width {job.width} must be a multiple of 32 and at least 64 (e.g. 1024)")
    if job.steps < 1:
        raise InputError(f"panorama.steps {job.steps} must be >= 1")
    if job.seam not in SEAM_MODES:
        raise InputError(f"panorama.seam {job.seam!r} must be one of {', '.join(SEAM_MODES)}")
    pipe.set_progress_bar_config(disable=True)  # progress goes through on_step
    unet = getattr(pipe, "unet", None) is not None
    packed = hasattr(pipe, "_pack_latents")
    seam = job.seam if job.seam != "auto" else ("circular" if unet else "blend")
    if seam == "circular" and not unet:
        raise InputError("panorama.seam=circular needs a UNet denoiser; transformers (FLUX, SD3) use seam=blend")
    vs = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    # Transformers patchify 2x2 latent pixels (FLUX packs them, SD3 embeds them): widths step by 2 latents.
    unit_px = vs * (1 if unet else 2)
    ext = 0
    if seam == "blend":
        ext = job.seam_extend or max(32, width // 16)
        ext = int(math.ceil(ext / unit_px) * unit_px)
        if ext >= width:
            raise InputError(f"panorama.seam_extend {job.seam_extend} must be below the width {width}")
    gen_w = width + ext
    params = inspect.signature(pipe.__call__).parameters

    # Initial noise, drawn on the CPU in float32: the same seed gives the same noise on any device.
    channels = int(pipe.vae.config.latent_channels)
    h_lat, w_lat = height // vs, gen_w // vs
    gen = torch.Generator("cpu").manual_seed(int(job.seed))
    noise = torch.randn((1, channels, h_lat, w_lat), generator=gen, dtype=torch.float32)
    blend = None
    t_start = time.perf_counter()

    def step_done(step: int) -> None:
        if on_step:
            done = step + 1
            on_step(done, job.steps, (time.perf_counter() - t_start) / done)

    if seam == "blend":
        noise = WrapBlend(LatentLayout(False, h_lat, w_lat), ext // vs).init_noise(noise)
        blend = WrapBlend(LatentLayout(packed, h_lat, w_lat), ext // vs, step_done)
    if packed:
        noise = pipe._pack_latents(noise, 1, channels, h_lat, w_lat)

    handles = []
    if seam == "circular":
        handles.append(circular_convs(pipe.unet))
    if not plan.vae_tiling and seam != "none":
        handles.append(circular_convs(pipe.vae))
    try:
        apply_plan(pipe, plan)
        kwargs: dict[str, Any] = {
            "prompt": job.prompt,
            "height": height,
            "width": gen_w,
            "num_inference_steps": job.steps,
            "generator": gen,
            "latents": noise.to(pipe.dtype),
            "output_type": "latent",
        }
        guidance = job.guidance if job.guidance is not None else default_guidance(pipe)
        if guidance is not None and "guidance_scale" in params:
            kwargs["guidance_scale"] = guidance
        if job.negative_prompt and "negative_prompt" in params:
            kwargs["negative_prompt"] = job.negative_prompt
        if "true_cfg_scale" in params:
            kwargs["true_cfg_scale"] = job.true_cfg
        if job.image is not None:
            img, mask = job.image, job.mask
            if seam == "blend":  # the extension repeats the first columns, known pixels included
                img = np.concatenate([img, img[:, :ext]], axis=1)
                mask = np.concatenate([mask, mask[:, :ext]], axis=1)
            from PIL import Image

            kwargs["image"] = Image.fromarray(np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
            kwargs["mask_image"] = Image.fromarray(mask.astype(np.uint8) * 255)
            if "strength" in params:
                kwargs["strength"] = 1.0
        if "callback_on_step_end" in params:
            kwargs["callback_on_step_end"] = blend if blend is not None else (lambda p, i, t, kw: (step_done(i), kw)[1])
        elif blend is not None:
            raise InputError(f"{type(pipe).__name__} has no per-step callback, which seam=blend needs; use seam=none")
        with torch.inference_mode():
            try:
                latents = pipe(**kwargs).images
            except torch.cuda.OutOfMemoryError as e:
                raise WorldgenError(
                    f"the GPU ran out of memory while painting a {width}x{height} panorama ({plan.describe()}); "
                    f"try --set panorama.vram_budget_gb=<less> or a smaller panorama.width"
                ) from e
            if packed:
                latents = pipe._unpack_latents(latents, height, gen_w, pipe.vae_scale_factor)
            latents = latents[..., : width // vs]
            image = decode(pipe, latents, tiled=plan.vae_tiling, circular=seam != "none")
    finally:
        for h in handles:
            h.remove()
    # Whether the negative prompt took part: FLUX needs true_cfg > 1, CFG pipelines guidance > 1.
    negative_used = bool(job.negative_prompt) and "negative_prompt" in params
    if "true_cfg_scale" in params:
        negative_used = negative_used and job.true_cfg > 1
    elif guidance is not None:
        negative_used = negative_used and guidance > 1
    facts = {
        "pipeline": type(pipe).__name__,
        "guidance": guidance,
        "negative_prompt_used": negative_used,
        "seam": {"method": seam, "extend_px": ext},
    }
    return image, facts


def decode(pipe, latents, tiled: bool, circular: bool) -> np.ndarray:
    """Latents [1, C, h, w] -> image [h*s, w*s, 3] float32 in [0, 1].

    With ``circular`` and tiling, the latent is padded on both sides with columns from the other
    side, decoded, and cropped (the VAE convolutions are circular themselves when not tiled).
    """
    import torch

    vae = pipe.vae
    cfg = vae.config
    z = latents / cfg.scaling_factor + (getattr(cfg, "shift_factor", None) or 0.0)
    margin = 0
    if circular and tiled:
        margin = min(8, z.shape[-1] // 2)
        z = torch.cat([z[..., -margin:], z, z[..., :margin]], dim=-1)
    device = getattr(pipe, "_execution_device", None) or z.device
    dtype = vae.dtype
    on_meta = any(p.device.type == "meta" for p in vae.parameters())  # sequential offload holds weights elsewhere
    if dtype == torch.float16 and getattr(cfg, "force_upcast", False) and not on_meta:
        # SDXL's VAE overflows in float16 (its config says so); decode in float32 instead.
        vae.to(torch.float32)
        dtype = torch.float32
    out = vae.decode(z.to(device=device, dtype=dtype), return_dict=False)[0]
    if margin:
        s = out.shape[-1] // z.shape[-1]
        out = out[..., margin * s : out.shape[-1] - margin * s]
    if getattr(pipe, "safety_checker", None) is not None and hasattr(pipe, "run_safety_checker"):
        out, flagged = pipe.run_safety_checker(out, device, out.dtype)
        if flagged and any(flagged):
            raise WorldgenError("the pipeline's safety checker blocked the panorama; change the prompt")
    img = (out[0].float().clamp(-1, 1) + 1) / 2
    return img.permute(1, 2, 0).cpu().numpy().astype(np.float32)
