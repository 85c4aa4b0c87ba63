"""The hidden background's colour painted by a diffusion inpainting model (the ``fill`` model role).

Registered as the inpainter ``diffusion`` (and ``auto``: ``diffusion`` when given a model, else
``patchmatch``; the default of the layers, the mesh and the splats). It works in panorama space,
on the equirect itself, so the hidden bands behind depth edges (thin slivers spread over the
whole sphere) are painted in one pass with the seam handling of the panorama package: circular
convolutions for UNet pipelines (Stable Diffusion inpainting), a latent wrap-blend for transformer
pipelines (FLUX Fill), see :mod:`worldgen.panorama.seam`.

What the model sees. A hidden pixel's own panorama colour is the *occluder* (the sofa in front of
the floor the layer continues), so it must not leak into the hole. The hole is therefore first
pre-filled with the weight-free ``patchmatch`` inpainter, guided by the log-depth of the continued
background (floor patches fill hidden floor, sky fills hidden sky), and the model then *refines*
that pre-fill: it starts from the pre-fill noised to ``strength`` (0.85) of the schedule, not from
pure noise, and paints inside the hole grown by a few pixels, so its strokes meet the known pixels.
Inpainting pipelines hide the masked pixels from their conditioning, so the occluder's colour
inside the hole reaches the model only through the pre-fill's structure, never directly. The
foreground *beyond* the hole is still visible to the model as context; the pre-fill anchors the
result to the background. Afterwards only the hole pixels are replaced: every known pixel is
returned bit-for-bit unchanged.

Prompt: the run's text prompt when it has one (``--set mesh.fill_prompt=...`` overrides it), else
:data:`NEUTRAL_PROMPT`.

The mesh and the splats use the same painting. The two stages build their layers on working grids
of their own (the mesh's ``layer_work_width``, the splats' pixel step), and a diffusion model paints
different things at different sizes, so the model always paints one canonical grid,
:data:`FILL_WIDTH` columns on a GPU, :data:`FILL_WIDTH_CPU` on the CPU (or the panorama's own width
when narrower), and a stage on another grid
resamples that painting (its hidden pixels that the canonical hole does not cover keep the
pre-fill). The painting is deterministic for a seed and kept in memory for the run, so the second
stage reuses it instead of running the model again.

Memory: the pipeline is loaded and placed with :func:`worldgen.panorama.memory.plan_memory` for the
painting size (all on the GPU, model or sequential CPU offload, VAE tiling; on the CPU in float32),
and released before the stage goes on.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .inpaint import inpaint, register_inpainter

NEUTRAL_PROMPT = "background, continuation of the scene"
"""The prompt when the run has none (a panorama or a photo was given)."""

FILL_WIDTH = 1024
"""Columns of the canonical grid the model paints on a GPU (the panorama's own width when narrower)."""

FILL_WIDTH_CPU = 512
"""The same without a CUDA GPU, where every step is slow (the panorama backends' CPU width)."""

STRENGTH = 0.85
"""Share of the noise schedule the model runs from the noised pre-fill (1.0 would ignore the pre-fill)."""

DEFAULT_STEPS = 20
"""Denoising steps of the full schedule (``strength`` of them run)."""

NEEDS_MODEL = (
    "the diffusion inpainter of the hidden layer needs an inpainting/fill pipeline: give --model fill=ID|PATH "
    '(or fill = "ID-or-PATH" in the [models] table of worldgen.toml), or use --set mesh.inpaint=patchmatch'
)

_MEMO: OrderedDict[str, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
_MEMO_SIZE = 2


def grow_px(width: int) -> int:
    """Pixels the hole is grown by for the model's mask (2 at 1024 columns, at least 1)."""
    return max(1, round(2 * width / 1024))


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` dilated by ``px`` pixels (8-neighbourhood), longitude wrapping, rows clamped. [H, W] bool"""
    out = mask.copy()
    for _ in range(px):
        m = out | np.roll(out, 1, axis=1) | np.roll(out, -1, axis=1)
        m[1:] |= m[:-1].copy()
        m[:-1] |= m[1:].copy()
        out = m
    return out


def paint_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) the model paints for a grid of ``shape``: 2:1, width a multiple of 32, >= 64."""
    h, w = shape
    if w % 32 == 0 and w == 2 * h and w >= 64:
        return h, w
    pw = max(64, int(round(w / 32)) * 32)
    return pw // 2, pw


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of [H, W, C] or [H, W] float32 to ``shape`` (PIL, float mode)."""
    from PIL import Image

    if img.shape[:2] == tuple(shape):
        return img.astype(np.float32)
    chans = img[..., None] if img.ndim == 2 else img
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(chans[..., c], np.float32), "F").resize(
                    (shape[1], shape[0]), Image.BILINEAR
                )
            )
            for c in range(chans.shape[-1])
        ],
        -1,
    )
    return out[..., 0] if img.ndim == 2 else out


def diffusion_inpaint(
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    *,
    model: str = "",
    prompt: str = "",
    steps: int = DEFAULT_STEPS,
    strength: float = STRENGTH,
    prefilled: bool = False,
    classes: np.ndarray | None = None,
    anchor: np.ndarray | None = None,
) -> np.ndarray:
    """The registered ``diffusion`` inpainter: pre-fill with patchmatch, then refine with the fill model.

    Args:
        image: panorama-space colour, sRGB in [0, 1]. [H, W, 3] float
        hole: pixels to fill. [H, W] bool
        guide: structure channel for the patchmatch pre-fill (log-depth of the continued background). [H, W]
        seed: random seed (pre-fill and the model's noise).
        model: folder of a diffusers inpainting/fill pipeline (safetensors); required.
        prompt: text for the model ("" -> :data:`NEUTRAL_PROMPT`).
        steps: denoising steps of the full schedule.
        strength: share of the schedule run from the noised pre-fill, in (0, 1].
        prefilled: ``image`` already holds the pre-fill inside ``hole`` (skip patchmatch).
        classes, anchor: source classes and anchors of the patchmatch pre-fill
            (worldgen.layers.inpaint.inpaint), or None. [H, W] int

    Returns:
        [H, W, 3] float32, equal to ``image`` outside ``hole``.
    """
    return paint_hole(
        image,
        hole,
        guide,
        seed,
        model=model,
        prompt=prompt,
        steps=steps,
        strength=strength,
        prefilled=prefilled,
        classes=classes,
        anchor=anchor,
    )[0]


def paint_hole(
    image: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None,
    seed: int,
    *,
    model: str,
    prompt: str = "",
    steps: int = DEFAULT_STEPS,
    strength: float = STRENGTH,
    prefilled: bool = False,
    classes: np.ndarray | None = None,
    anchor: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`diffusion_inpaint` returning also the facts for the manifest (pipeline, memory plan, seconds)."""
    if not model:
        raise InputError(NEEDS_MODEL)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"fill_steps {steps!r} must be an integer >= 1")
    if not 0 < strength <= 1:
        raise InputError(f"the fill strength {strength} must lie in (0, 1]")
    image = np.asarray(image, np.float32)
    hole = np.asarray(hole, bool)
    prompt = prompt.strip() or NEUTRAL_PROMPT
    if not hole.any():
        return image.copy(), {"painted_pixels": 0}
    t0 = time.perf_counter()
    base = image if prefilled else inpaint("patchmatch", image, hole, guide, seed, classes, anchor)
    t_pre = time.perf_counter() - t0
    key = hashlib.sha256()
    for part in (base, hole):
        key.update(np.ascontiguousarray(part).tobytes())
    key.update(repr((str(Path(model).resolve()), prompt, steps, strength, int(seed), base.shape)).encode())
    digest = key.hexdigest()
    if digest in _MEMO:
        _MEMO.move_to_end(digest)
        out, facts = _MEMO[digest]
        # The same painting as the first stage's; only the timings differ (none were spent here).
        return out.copy(), {**facts, "seconds": {"prefill": round(t_pre, 3), "reused_painting": 0.0}}
    ph, pw = paint_size(hole.shape)
    small = _resize(np.clip(base, 0, 1), (ph, pw))
    small_hole = _resize(hole.astype(np.float32), (ph, pw)) > 0
    mask = grow(small_hole, grow_px(pw))
    painted, facts = _run_model(model, small, mask, prompt, steps, strength, seed)
    painted = _resize(painted, hole.shape)
    out = np.where(hole[..., None], np.clip(painted, 0, 1), image).astype(np.float32)
    facts = {
        **facts,
        "prompt": prompt,
        "steps": steps,
        "strength": strength,
        "seed": int(seed),
        "grid": [int(hole.shape[0]), int(hole.shape[1])],
        "paint_size": [ph, pw],
        "mask_grown_px": grow_px(pw),
        "painted_pixels": int(hole.sum()),
        "seconds": {"prefill": round(t_pre, 3), **facts.pop("seconds")},
    }
    _MEMO[digest] = (out, facts)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return out.copy(), facts


def _run_model(
    model: str, image: np.ndarray, mask: np.ndarray, prompt: str, steps: int, strength: float, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Load the fill pipeline within the memory plan, paint ``mask`` of ``image`` [h, 2h, 3], release it."""
    from ..panorama.backend import SMALL_MODEL
    from ..panorama.diffusion import is_fill_pipeline, load_pipeline, release_memory, torch_threads
    from ..panorama.memory import plan_memory, probe_memory, read_footprint

    h, w = mask.shape
    fp = read_footprint(model)
    cuda_free, host, bf16, device_name = probe_memory()
    batch = 2 if fp.denoiser == "unet" else 1  # classifier-free guidance doubles the UNet batch
    plan = plan_memory(fp, w, h, cuda_free=cuda_free, host_available=host, bf16_supported=bf16, batch=batch)
    threads = 1 if plan.device == "cpu" and fp.total_params < SMALL_MODEL else None
    with torch_threads(threads):
        t0 = time.perf_counter()
        pipe = load_pipeline(model, plan.dtype)
        load_s = time.perf_counter() - t0
        try:
            if not is_fill_pipeline(pipe):
                raise InputError(
                    f"{Path(model).name} holds a {type(pipe).__name__}, not an inpainting/fill pipeline; "
                    "the hidden layer needs one as --model fill=..."
                )
            t1 = time.perf_counter()
            painted, facts = _paint(pipe, plan, image, mask, prompt, steps, strength, seed)
            paint_s = time.perf_counter() - t1
        finally:
            del pipe
            release_memory()
    return painted, {
        **facts,
        "device": device_name,
        # the free memory differs from run to run; the artifacts must not (worldgen/artifacts.py)
        "memory": {k: v for k, v in plan.record().items() if k != "available_gib"},
        "parameters": fp.total_params,
        "seconds": {"model_load": round(load_s, 3), "paint": round(paint_s, 3)},
    }


def _paint(pipe, plan, image, mask, prompt, steps, strength, seed) -> tuple[np.ndarray, dict[str, Any]]:
    """Run a loaded fill pipeline on the equirect ``image`` [h, w, 3] where ``mask`` [h, w]; seamless in width."""
    import inspect

    import torch
    from PIL import Image

    from ..panorama.diffusion import decode, default_guidance
    from ..panorama.memory import apply_plan
    from ..panorama.seam import LatentLayout, WrapBlend, circular_convs

    h, w = mask.shape
    params = inspect.signature(pipe.__call__).parameters
    unet = getattr(pipe, "unet", None) is not None
    packed = hasattr(pipe, "_pack_latents")
    vs = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    ext = 0
    if not unet:
        # Transformers see absolute positions: paint an extension repeating the first columns and
        # cross-fade it into them after every step (the panorama backends' wrap-blend).
        unit = 2 * vs
        ext = int(math.ceil(max(32, w // 16) / unit) * unit)
        if ext >= w:
            ext = 0
    gen_w = w + ext
    img = np.concatenate([image, image[:, :ext]], axis=1) if ext else image
    msk = np.concatenate([mask, mask[:, :ext]], axis=1) if ext else mask
    gen = torch.Generator("cpu").manual_seed(int(seed))  # the same noise on any device
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "image": Image.fromarray(np.clip(np.round(img * 255), 0, 255).astype(np.uint8)),
        "mask_image": Image.fromarray(msk.astype(np.uint8) * 255),
        "height": h,
        "width": gen_w,
        "num_inference_steps": steps,
        "generator": gen,
        "output_type": "latent",
    }
    strength_used = "strength" in params
    if strength_used:
        kwargs["strength"] = float(strength)
    guidance = default_guidance(pipe)
    if guidance is not None and "guidance_scale" in params:
        kwargs["guidance_scale"] = guidance
    blend = None
    if ext:
        blend = WrapBlend(LatentLayout(packed, h // vs, gen_w // vs), ext // vs)
        if "callback_on_step_end" not in params:
            raise InputError(f"{type(pipe).__name__} has no per-step callback, which the seamless fill needs")
        kwargs["callback_on_step_end"] = blend
    handles = [circular_convs(pipe.unet)] if unet else []
    if not plan.vae_tiling:
        handles.append(circular_convs(pipe.vae))
    try:
        apply_plan(pipe, plan)
        with torch.inference_mode():
            latents = pipe(**kwargs).images
            if packed:
                latents = pipe._unpack_latents(latents, h, gen_w, pipe.vae_scale_factor)
            latents = latents[..., : w // vs]
            out = decode(pipe, latents, tiled=plan.vae_tiling, circular=True)
    finally:
        for hd in handles:
            hd.remove()
    facts = {
        "pipeline": type(pipe).__name__,
        "guidance": guidance,
        "strength_used": strength_used,
        "seam": {"method": "circular" if unet else ("blend" if ext else "none"), "extend_px": ext},
    }
    return out, facts


def fill_width() -> int:
    """Columns of the canonical grid here: :data:`FILL_WIDTH` with a CUDA GPU, else :data:`FILL_WIDTH_CPU`."""
    import torch

    return FILL_WIDTH if torch.cuda.is_available() else FILL_WIDTH_CPU


def fill_layer_colour(
    panorama,
    depth,
    config,
    colour: np.ndarray,
    hidden: np.ndarray,
    guide: np.ndarray,
    seed: int,
    sources: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The layer's inpainted colour on its own grid, painted by the model on the canonical grid.

    Args:
        panorama, depth: the stage's inputs (to build the canonical grid when the stage's differs).
        config: the stage's :class:`~worldgen.layers.layered.LayerConfig` (``fill_model``, ``fill_prompt``,
            ``fill_steps``).
        colour: the stage's working-grid colour. [h, w, 3] float32
        hidden: its hidden pixels. [h, w] bool
        guide: its log-depth guide. [h, w] float32
        seed: random seed.
        sources: the pre-fill's source constraints, ``classes`` (sky / surface) and ``anchor`` (the
            seed each hidden pixel continues), as worldgen.layers.inpaint.inpaint takes them, or None.

    Returns:
        A tuple: the colour with the hidden pixels filled ([h, w, 3] float32, ``colour`` elsewhere),
        and the facts for the manifest.
    """
    from .layered import build_layers

    if not config.fill_model:
        raise InputError(NEEDS_MODEL)
    opts = {"model": config.fill_model, "prompt": config.fill_prompt, "steps": config.fill_steps}
    W = depth.shape[1]
    width = fill_width()
    if math.ceil(W / config.work_width) == math.ceil(W / width):
        return paint_hole(colour, hidden, guide, seed, **(sources or {}), **opts)
    canon = build_layers(panorama, depth, replace(config, work_width=width, inpaint="patchmatch"), seed)
    painted, facts = paint_hole(canon.colour, canon.hidden, None, seed, prefilled=True, **opts)
    prefill = inpaint("patchmatch", colour, hidden, guide, seed, **(sources or {}))
    mapped, covered = resample_hidden(painted, canon.hidden, hidden.shape)
    use = hidden & covered
    out = np.where(use[..., None], mapped, prefill).astype(np.float32)
    facts = {
        **facts,
        "stage_grid": [int(hidden.shape[0]), int(hidden.shape[1])],
        "stage_pixels_from_painting": round(float(use.sum() / max(1, hidden.sum())), 5),
    }
    return out, facts


def resample_hidden(painted: np.ndarray, valid: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sample the ``valid`` pixels of ``painted`` [hc, wc, 3] at the pixel centres of a grid of ``shape``.

    Bilinear, normalised by the valid weight (so a painted value never mixes with the occluder's
    colour around it), longitude wrapping; a coarser target is box-averaged first.

    Returns:
        A tuple: colour [h, w, 3] float32 and covered [h, w] bool (at least half the weight valid).
    """
    from scipy.ndimage import map_coordinates, uniform_filter1d

    hc, wc = valid.shape
    h, w = shape
    v = valid.astype(np.float32)
    num = painted.astype(np.float32) * v[..., None]
    fy, fx = hc / h, wc / w
    if fy > 1 or fx > 1:  # box-average over a target pixel's footprint
        for axis, f, mode in ((0, fy, "nearest"), (1, fx, "wrap")):
            size = max(1, int(round(f)))
            if size > 1:
                v = uniform_filter1d(v, size, axis=axis, mode=mode)
                num = uniform_filter1d(num, size, axis=axis, mode=mode)
    ys = (np.arange(h) + 0.5) * fy - 0.5
    xs = (np.arange(w) + 0.5) * fx - 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    # one wrapped column on each side so bilinear taps cross the ±180° seam
    vp = np.concatenate([v[:, -1:], v, v[:, :1]], axis=1)
    np_ = np.concatenate([num[:, -1:], num, num[:, :1]], axis=1)
    coords = [np.clip(yy, 0, hc - 1), xx + 1]
    den = map_coordinates(vp, coords, order=1, mode="nearest")
    col = np.stack([map_coordinates(np_[..., c], coords, order=1, mode="nearest") for c in range(3)], -1)
    covered = den >= 0.5
    out = np.where(covered[..., None], col / np.maximum(den, 1e-6)[..., None], 0.0)
    return out.astype(np.float32), covered


def fill_options(config) -> dict[str, Any]:
    """The LayerConfig fields of the diffusion fill from a stage config that carries them."""
    return {k: getattr(config, k) for k in ("fill_model", "fill_prompt", "fill_steps")}


def with_run_prompt(config, request):
    """``config`` with ``fill_prompt`` set to the run's prompt when the user gave none for the fill."""
    if config.fill_prompt or not request.prompt:
        return config
    return replace(config, fill_prompt=request.prompt)


def check_fill_configured(options) -> None:
    """Refuse ``inpaint=diffusion`` for the mesh or splats without a fill model, before any stage runs.

    Args:
        options: the run's :class:`worldgen.pipeline.RunOptions` (``models``, ``options`` from --set,
            ``defaults`` from worldgen.toml).
    """
    if "fill" in options.models:
        return
    for stage in ("gaussians", "mesh"):
        given = dict(options.options.get(stage, {}))
        for values in [given, *({**d, **given} for d in options.defaults.get(stage, {}).values())]:
            if values.get("inpaint") == "diffusion" and not values.get("fill_model"):
                raise InputError(NEEDS_MODEL.replace("mesh.inpaint", f"{stage}.inpaint"))


def auto_inpaint(
    image: np.ndarray, hole: np.ndarray, guide: np.ndarray | None = None, seed: int = 0, *, model: str = "", **options
) -> np.ndarray:
    """The ``auto`` inpainter: :func:`diffusion_inpaint` when given a fill ``model``, else ``patchmatch``."""
    if model:
        return diffusion_inpaint(image, hole, guide, seed, model=model, **options)
    return inpaint("patchmatch", image, hole, guide, seed, options.get("classes"), options.get("anchor"))


register_inpainter("diffusion", diffusion_inpaint)
register_inpainter("auto", auto_inpaint)

__all__ = [
    "FILL_WIDTH",
    "auto_inpaint",
    "check_fill_configured",
    "NEUTRAL_PROMPT",
    "diffusion_inpaint",
    "fill_layer_colour",
    "fill_options",
    "paint_hole",
    "resample_hidden",
    "with_run_prompt",
]
