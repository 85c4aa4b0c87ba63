"""The ``diffusers`` (text -> 360°) and ``outpaint`` (photo -> 360°) panorama backends.

``diffusers`` paints a 2:1 equirect from the prompt with the pipeline configured for the role
``panorama`` (``--model panorama=ID|PATH`` or worldgen.toml); ``outpaint`` places ``--image`` in the
equirect at its field of view (``--fov`` or EXIF) and outpaints the rest with the pipeline of the
role ``fill``, keeping the photo's pixels unchanged where it lies. Both are seamless across ±180°
(:mod:`~worldgen.panorama.seam`), resample the polar caps (:mod:`~worldgen.panorama.poles`) and pick
their memory settings from the free GPU memory (:mod:`~worldgen.panorama.memory`).

Default width (``panorama.width=0``): 2048 on a GPU that holds the model without sequential
offload at that size, else 1024; 512 on the CPU, where every step is slow.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import encode_png
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import Panorama

log = logging.getLogger(__name__)

GPU_WIDTH = 2048
GPU_WIDTH_SHORT = 1024
CPU_WIDTH = 512
INFO_LOAD_LIMIT = 2_000_000_000
"""``worldgen info`` loads pipelines up to this many parameters; larger ones are checked without loading."""
SMALL_MODEL = 50_000_000
"""Below this many parameters a CPU run uses one torch thread: on small tensors OpenMP's
synchronisation costs more than a second core gains (measured 50x slower convolutions with 2
threads on a loaded 2-core machine)."""


@dataclass(frozen=True)
class DiffusersConfig:
    """Options of the diffusers panorama backends (``--set panorama.FIELD=VALUE``).

    Args:
        model: the pipeline folder; filled from ``--model panorama=...`` (``fill=...`` for ``outpaint``).
        negative_prompt: what to avoid ("").
        width: panorama width in pixels, a multiple of 32 (0: 2048 on a GPU, 1024 when memory is
            short, 512 on the CPU).
        steps: denoising steps (preset: fast 20, balanced 28, quality 50).
        guidance: guidance scale (None: the pipeline's own default, e.g. 3.5 FLUX, 7.5 SD).
        true_cfg: FLUX true classifier-free guidance with the negative prompt, used when > 1 (1.0).
        loras: LoRAs, each "PATH-or-ID[:SCALE]" (a .safetensors file, a folder with one, or a cached id).
        seam: "auto" (circular convolutions for UNets, latent wrap-blend for transformers),
            "circular", "blend" or "none".
        seam_extend: wrap-blend extension, pixels (0: width / 16).
        poles: resample the polar caps through tangent-plane views (True).
        device: "auto" (CUDA when present) or "cpu".
        dtype: "auto" (bfloat16/float16 on a GPU, float32 on the CPU), "float32", "bfloat16", "float16".
        vram_budget_gb: use at most this much GPU memory, GiB (0: whatever is free).
        threads: torch CPU threads (0: torch's default, or 1 for models under 50M parameters).
        prompt: the outpainting prompt of ``outpaint`` ("" for none); ignored by ``diffusers``, which
            paints the run's prompt.
    """

    model: str = ""
    negative_prompt: str = ""
    width: int = 0
    steps: int = 28
    guidance: float | None = None
    true_cfg: float = 1.0
    loras: tuple[str, ...] = ()
    seam: str = "auto"
    seam_extend: int = 0
    poles: bool = True
    device: str = "auto"
    dtype: str = "auto"
    vram_budget_gb: float = 0.0
    threads: int = 0
    prompt: str = ""


_PRESETS = {"fast": {"steps": 20}, "balanced": {"steps": 28}, "quality": {"steps": 50}}


def _unavailable() -> str | None:
    missing = [m for m in ("diffusers", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install diffusers transformers accelerate peft (worldgen's models extra)"
    return None


def _check_options(cfg: DiffusersConfig) -> None:
    if cfg.device not in ("auto", "cpu"):
        raise InputError(f"panorama.device {cfg.device!r} must be 'auto' or 'cpu'")
    if cfg.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise InputError(f"panorama.dtype {cfg.dtype!r} must be auto, float32, bfloat16 or float16")
    if cfg.width and (cfg.width % 32 or cfg.width < 64):
        raise InputError(f"panorama.width {cfg.width} must be a multiple of 32 and at least 64 (or 0 for automatic)")
    if not cfg.vram_budget_gb >= 0:
        raise InputError(f"panorama.vram_budget_gb {cfg.vram_budget_gb} must be >= 0 (0: use the free memory)")
    if isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int) or cfg.threads < 0:
        raise InputError(f"panorama.threads {cfg.threads!r} must be an integer >= 0 (0: automatic)")
    if isinstance(cfg.loras, str):
        raise InputError("panorama.loras must be a list, e.g. --set 'panorama.loras=[\"style.safetensors:0.8\"]'")


def _plan(cfg: DiffusersConfig, fp, batch: int):
    """(width, memory plan, device name) for this configuration."""
    from .memory import GIB, plan_memory, probe_memory

    cuda_free, host, bf16, device_name = probe_memory()
    if cfg.device == "cpu":
        cuda_free, device_name = None, "cpu"
    kw = {
        "cuda_free": cuda_free,
        "host_available": host,
        "bf16_supported": bf16,
        "budget": int(cfg.vram_budget_gb * GIB) if cfg.vram_budget_gb else None,
        "dtype": None if cfg.dtype == "auto" else cfg.dtype,
        "batch": batch,
    }
    if cfg.width:
        return cfg.width, plan_memory(fp, cfg.width, cfg.width // 2, **kw), device_name
    if cuda_free is None:
        return CPU_WIDTH, plan_memory(fp, CPU_WIDTH, CPU_WIDTH // 2, **kw), device_name
    fallback = None
    error: InputError | None = None
    for w in (GPU_WIDTH, GPU_WIDTH_SHORT):
        try:
            plan = plan_memory(fp, w, w // 2, **kw)
        except InputError as e:
            error = error or e
            continue
        if plan.placement != "sequential_offload":
            return w, plan, device_name
        fallback = fallback or (w, plan)
    if fallback:
        return (*fallback, device_name)
    assert error is not None
    raise error


def _progress(ctx: StageContext, device: str, plan):
    """Per-step progress: where it runs, with which memory settings, seconds per step and time left."""
    if plan.device == "cpu":
        where = "on the CPU (slow)"
    else:
        where = f"on {device}, {plan.describe().split(' (')[0]}"

    def on_step(done: int, total: int, per_step: float) -> None:
        left = per_step * (total - done)
        ctx.progress(
            0.05 + 0.85 * done / total, f"step {done}/{total} {where}: {per_step:.1f} s/step, ~{left:.0f} s left"
        )

    return on_step


def _paint(
    ctx: StageContext, role: str, prompt: str, prepare: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Load the configured pipeline and paint.

    Args:
        role: "panorama" (text-to-image) or "fill" (inpainting/fill).
        prepare: for "fill": called with the chosen width, returns the known pixels [H, W, 3] float
            in [0, 1] and the mask of pixels to paint [H, W] bool.

    Returns:
        A tuple: **image** [W/2, W, 3] float32 and the **report** for the manifest.
    """
    from .diffusion import parse_loras, torch_threads
    from .memory import read_footprint

    cfg: DiffusersConfig = ctx.config
    _check_options(cfg)
    if not cfg.model:
        task = (
            "turning a photo into a 360° panorama needs an inpainting/fill pipeline"
            if role == "fill"
            else "painting a panorama from a prompt with the diffusers backend needs a text-to-image pipeline"
        )
        raise InputError(
            f'{task}: give --model {role}=ID|PATH, or {role} = "ID-or-PATH" in the models table of worldgen.toml'
        )
    fp = read_footprint(cfg.model)
    loras = parse_loras(cfg.loras)
    batch = 2 if fp.denoiser == "unet" or (cfg.negative_prompt and cfg.true_cfg > 1) else 1
    width, plan, device_name = _plan(cfg, fp, batch)
    log.info("panorama memory plan: %s", plan.describe())
    ctx.progress(0.01, plan.describe())
    threads = cfg.threads or (1 if plan.device == "cpu" and fp.total_params < SMALL_MODEL else None)
    with torch_threads(threads):
        return _load_and_run(ctx, role, prompt, prepare, cfg, fp, loras, width, plan, device_name)


def _load_and_run(ctx, role, prompt, prepare, cfg, fp, loras, width, plan, device_name):
    from .diffusion import load_pipeline, release_memory

    t0 = time.perf_counter()
    pipe = load_pipeline(cfg.model, plan.dtype, loras)
    load_s = time.perf_counter() - t0
    try:
        return _run_loaded(ctx, pipe, load_s, role, prompt, prepare, cfg, fp, loras, width, plan, device_name)
    finally:
        # Later stages (splat refinement on CUDA) need the GPU memory the pipeline held.
        del pipe
        release_memory()


def _run_loaded(ctx, pipe, load_s, role, prompt, prepare, cfg, fp, loras, width, plan, device_name):
    from .diffusion import Job, is_fill_pipeline, run_job

    if is_fill_pipeline(pipe) != (role == "fill"):
        want = "an inpainting/fill" if role == "fill" else "a text-to-image"
        other = "fill" if role == "panorama" else "panorama"
        raise InputError(
            f"{Path(cfg.model).name} holds a {type(pipe).__name__}, not {want} pipeline; "
            f"configure it as --model {other}=... instead"
        )
    ctx.progress(0.04, f"loaded {type(pipe).__name__} in {load_s:.1f} s; {plan.describe()}")
    known = prepare(width) if prepare is not None else None
    job = Job(
        prompt=prompt,
        negative_prompt=cfg.negative_prompt,
        width=width,
        steps=cfg.steps,
        guidance=cfg.guidance,
        true_cfg=cfg.true_cfg,
        seed=int(ctx.seed),
        seam=cfg.seam,
        seam_extend=cfg.seam_extend,
        image=None if known is None else known[0],
        mask=None if known is None else known[1],
    )
    t1 = time.perf_counter()
    image, facts = run_job(pipe, fp, plan, job, _progress(ctx, device_name, plan))
    seconds = time.perf_counter() - t1
    report = {
        **facts,
        "prompt": prompt,
        "negative_prompt": cfg.negative_prompt,
        "steps": cfg.steps,
        "true_cfg": cfg.true_cfg,
        "seed": int(ctx.seed),
        "loras": [
            {"source": lo.source, "scale": lo.scale, "file": lo.file.name, "sha256": _sha256(lo.file)} for lo in loras
        ],
        "width": width,
        "height": width // 2,
        "device": device_name,
        "memory": plan.record(),
        "parameters": fp.total_params,
        "load_seconds": round(load_s, 3),
        "generate_seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / cfg.steps, 4),
    }
    return image, report


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _finish(ctx: StageContext, image: np.ndarray, report: dict[str, Any]) -> np.ndarray:
    from .poles import fix_poles, pole_spread

    cfg: DiffusersConfig = ctx.config
    report["poles"] = {"resampled": bool(cfg.poles), "spread_before": round(pole_spread(image), 5)}
    if cfg.poles:
        ctx.progress(0.92, "resampling the polar caps")
        image = fix_poles(image)
    report["poles"]["spread_after"] = round(pole_spread(image), 5)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _seam_report(image: np.ndarray) -> dict[str, float]:
    from .seam import seam_continuity

    return {k: round(v, 5) for k, v in seam_continuity(image).items()}


def _run_text(ctx: StageContext) -> StageResult:
    req = ctx.request
    if req.prompt is None:
        raise InputError("the diffusers panorama backend paints a text prompt; give one (--spec is procedural only)")
    image, report = _paint(ctx, "panorama", req.prompt)
    image = _finish(ctx, image, report)
    pano = Panorama(image, "srgb")
    report["seam"].update(_seam_report(pano.image))
    return StageResult(artifacts={"panorama": pano}, report=report)


def _run_photo(ctx: StageContext) -> StageResult:
    from ..geometry.photo import photo_fov, place_photo, read_photo

    req = ctx.request
    cfg: DiffusersConfig = ctx.config
    if req.image is None:
        raise InputError("the outpaint panorama backend needs a photo: --image FILE")
    photo = read_photo(req.image)
    fov, how = photo_fov(req.image, req.fov)

    placed: dict[str, np.ndarray] = {}

    def prepare(width: int) -> tuple[np.ndarray, np.ndarray]:
        from scipy.ndimage import binary_erosion

        rgb, covered = place_photo(photo, fov, width)
        placed["rgb"], placed["covered"] = rgb, covered
        # The model repaints a thin band inside the photo's edge so its strokes meet the photo;
        # the photo's own pixels are pasted back over everything it covers afterwards.
        inner = binary_erosion(covered, iterations=max(1, width // 256), border_value=1)
        return rgb.astype(np.float32) / 255.0, ~inner

    image, report = _paint(ctx, "fill", cfg.prompt, prepare)
    image = _finish(ctx, image, report)
    covered = placed["covered"]
    image[covered] = placed["rgb"][covered].astype(np.float32) / 255.0
    pano = Panorama(image, "srgb")
    report["seam"].update(_seam_report(pano.image))
    report.update(
        {
            "fov_deg": round(fov, 4),
            "fov_source": how,
            "photo_size": [int(photo.shape[1]), int(photo.shape[0])],
            "photo_coverage": round(float(covered.mean()), 5),
            "photo_pixels_kept": int(covered.sum()),
        }
    )
    mask_png = encode_png(covered.astype(np.uint8) * 255)
    return StageResult(artifacts={"panorama": pano}, files={"photo_mask.png": mask_png}, report=report)


def _check_model(role: str):
    def check(path: Path) -> str | None:
        """Load a small pipeline on the CPU; for a large one (over 2B parameters) read its index, its
        pipeline class and every weight file's header instead of loading tens of GB to list models."""
        import inspect
        import json

        from ..errors import WorldgenError
        from .diffusion import is_fill_pipeline, load_pipeline
        from .memory import read_footprint

        want = "fill/inpainting" if role == "fill" else "text-to-image"
        try:
            fp = read_footprint(path)
            if fp.total_params > INFO_LOAD_LIMIT:
                import diffusers

                name = json.loads((Path(path) / "model_index.json").read_text()).get("_class_name", "")
                cls = getattr(diffusers, name, None) if isinstance(name, str) else None
                if cls is None:
                    return f"pipeline class {name!r} is not in diffusers {diffusers.__version__}"
                if ("mask_image" in inspect.signature(cls.__call__).parameters) != (role == "fill"):
                    return f"{name} is not a {want} pipeline"
                return None
            pipe = load_pipeline(path)
        except WorldgenError as e:
            return str(e)
        if is_fill_pipeline(pipe) != (role == "fill"):
            return f"{type(pipe).__name__} is not a {want} pipeline"
        return None

    return check


register_backend(
    Backend(
        stage="panorama",
        name="diffusers",
        run=_run_text,
        summary="text prompt -> seamless 360° equirect with a diffusers pipeline (--model panorama=ID|PATH)",
        config=DiffusersConfig,
        presets=_PRESETS,
        version="1",
        unavailable=_unavailable,
        models={"panorama": "model"},
        check_model=_check_model("panorama"),
    )
)

register_backend(
    Backend(
        stage="panorama",
        name="outpaint",
        run=_run_photo,
        summary="photo (--image, --fov) -> 360° equirect outpainted by a diffusers fill/inpaint pipeline "
        "(--model fill=ID|PATH); the photo's pixels are kept",
        config=DiffusersConfig,
        presets=_PRESETS,
        version="1",
        unavailable=_unavailable,
        models={"fill": "model"},
        check_model=_check_model("fill"),
    )
)
