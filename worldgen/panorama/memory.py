"""Memory policy for diffusers pipelines: what fits where, chosen before any weight is loaded.

The model's size is read from its safetensors headers (parameter counts per component, the largest
tensor); activation sizes are estimated from its configs and the panorama size. From these and the
free GPU memory (or a user budget) :func:`plan_memory` picks, in this order of preference:

1. ``gpu``: every component on the GPU, in bfloat16 (float16 where the GPU lacks bfloat16);
   VAE tiling and slicing only when the full-size decode would not fit beside the weights.
2. ``model_offload``: components wait in host memory and move to the GPU one at a time
   (accelerate's model CPU offload); the GPU holds the largest component plus its activations.
3. ``sequential_offload``: weights stream to the GPU layer by layer (slow); VAE tiling and
   slicing, and attention slicing for UNets.
4. otherwise a one-line error naming what is needed, what is free, and a smaller width to try.

Without a GPU the pipeline runs on the CPU in float32 (``cpu``), if host memory holds it.
The estimates are deliberately conservative; the plan and its figures go into the manifest.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

GIB = 2**30
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_SAFETENSORS_ITEM = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_TEXT_TOKENS = 512  # FLUX's T5 sequence; an upper bound for the text tokens a transformer attends to


@dataclass(frozen=True)
class Footprint:
    """What a pipeline folder weighs, read from its files without loading it.

    Args:
        params: component name -> parameter count.
        largest_tensor: parameters of the largest single tensor (what sequential offload must hold).
        denoiser: "unet" or "transformer".
        denoiser_width: channels the denoiser carries per token (transformer: heads x head dim;
            UNet: its first block's channels, which run at the full latent size).
        vae_channels: channels of the VAE decoder's last, full-resolution block.
        vae_scale: pixels per latent pixel.
        vae_tile: the VAE's tile size in pixels when tiling (its config's sample_size).
    """

    params: dict[str, int]
    largest_tensor: int
    denoiser: str
    denoiser_width: int
    vae_channels: int
    vae_scale: int
    vae_tile: int

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


def _safetensors_params(path: Path) -> tuple[int, int]:
    """(parameter count, largest tensor) from a safetensors file's header; the tensors are not read."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise InputError(f"{path} is not a safetensors file (too short); re-save the model")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 * 2**20:
            raise InputError(f"{path} has a {n}-byte header, not a safetensors file; re-save the model")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise InputError(f"{path} has an unreadable safetensors header; re-save the model") from e
    total = largest = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        count = math.prod(meta.get("shape", [])) if meta.get("shape") else 1
        total += count
        largest = max(largest, count)
    return total, largest


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if len(f.name.split(".")) == 2 or "-of-" in f.name]
    return plain or files  # a folder with only variant files (model.fp16.safetensors) counts those


def read_footprint(folder: str | os.PathLike) -> Footprint:
    """Parameter counts and architecture facts of a diffusers pipeline folder (``model_index.json``)."""
    root = Path(folder)
    try:
        index = json.loads((root / "model_index.json").read_text())
    except (OSError, ValueError) as e:
        raise InputError(
            f"{root} has no readable model_index.json: not a diffusers pipeline folder; "
            "give a folder saved with save_pretrained"
        ) from e
    params: dict[str, int] = {}
    largest = 0
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue
        sub = root / name
        if not sub.is_dir():
            continue
        for f in _weight_files(sub):
            count, big = _safetensors_params(f)
            params[name] = params.get(name, 0) + count
            largest = max(largest, big)
    denoiser = "transformer" if "transformer" in params else "unet"
    cfg = _config(root / denoiser)
    if denoiser == "transformer":
        width = int(cfg.get("num_attention_heads", 24)) * int(cfg.get("attention_head_dim", 128))
    else:
        width = int((cfg.get("block_out_channels") or [320])[0])
    vae = _config(root / "vae")
    blocks = vae.get("block_out_channels") or [128, 256, 512, 512]
    return Footprint(
        params=params,
        largest_tensor=largest,
        denoiser=denoiser,
        denoiser_width=width,
        vae_channels=int(blocks[0]),
        vae_scale=2 ** (len(blocks) - 1),
        vae_tile=int(vae.get("sample_size") or 512) if not isinstance(vae.get("sample_size"), list) else 512,
    )


def footprint_of(pipe) -> Footprint:
    """The :class:`Footprint` of a pipeline already in memory (built from configs, not loaded from files)."""
    from torch import nn

    params: dict[str, int] = {}
    largest = 0
    for name, module in pipe.components.items():
        if isinstance(module, nn.Module):
            params[name] = sum(p.numel() for p in module.parameters())
            largest = max([largest] + [p.numel() for p in module.parameters()])
    denoiser = "transformer" if getattr(pipe, "transformer", None) is not None else "unet"
    cfg = getattr(pipe, denoiser).config
    if denoiser == "transformer":
        width = int(cfg.num_attention_heads) * int(cfg.attention_head_dim)
    else:
        width = int(cfg.block_out_channels[0])
    blocks = list(pipe.vae.config.block_out_channels)
    tile = pipe.vae.config.sample_size
    return Footprint(
        params, largest, denoiser, width, int(blocks[0]), 2 ** (len(blocks) - 1), tile if isinstance(tile, int) else 512
    )


def _config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Activations:
    """Estimated activation memory of one generation, bytes."""

    denoiser: int
    vae_full: int
    vae_tiled: int


def estimate_activations(fp: Footprint, width: int, height: int, dtype: str, batch: int = 1) -> Activations:
    """Conservative activation estimates for a ``width`` x ``height`` panorama.

    Args:
        batch: denoiser batch (2 with classifier-free guidance that runs the negative prompt).

    Formulas (bytes, s = bytes per value): transformer 12 x tokens x width x s x batch (residual,
    q/k/v, the 4x MLP, with memory-efficient attention that never forms the token x token matrix);
    UNet 30 x latent pixels x first-block channels x s x batch; VAE decode 8 x pixels x last-block
    channels x s, or the same over one tile when tiled.
    """
    s = _DTYPE_BYTES[dtype]
    lat = (height // fp.vae_scale) * (width // fp.vae_scale)
    if fp.denoiser == "transformer":
        den = 12 * (lat // 4 + _TEXT_TOKENS) * fp.denoiser_width * s * batch
    else:
        den = 30 * lat * fp.denoiser_width * s * batch
    full = 8 * width * height * fp.vae_channels * s
    tile = min(width * height, (fp.vae_tile * 3 // 2) ** 2)  # a tile plus its blending overlap
    return Activations(int(den), int(full), int(8 * tile * fp.vae_channels * s))


@dataclass(frozen=True)
class MemoryPlan:
    """What :func:`plan_memory` chose, and why.

    Args:
        device: "cuda" or "cpu".
        dtype: "float32", "bfloat16" or "float16".
        placement: "gpu", "model_offload", "sequential_offload" or "cpu".
        vae_tiling, vae_slicing, attention_slicing: the low-memory switches applied.
        available_gib: memory the plan had to fit in (GPU, or host for CPU runs), GiB.
        needed_gib: the plan's estimated peak, GiB.
        notes: one short reason per choice.
    """

    device: str
    dtype: str
    placement: str
    vae_tiling: bool
    vae_slicing: bool
    attention_slicing: bool
    available_gib: float
    needed_gib: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line for the progress display and the log."""
        extras = [n for n, on in (("VAE tiling", self.vae_tiling), ("attention slicing", self.attention_slicing)) if on]
        where = {
            "gpu": "all on the GPU",
            "model_offload": "model CPU offload",
            "sequential_offload": "sequential CPU offload",
            "cpu": "on the CPU",
        }[self.placement]
        memory = "host memory" if self.device == "cpu" else "GPU memory"
        return (
            f"{where}, {self.dtype}"
            + (f", {' + '.join(extras)}" if extras else "")
            + f" (needs ~{self.needed_gib:.1f} of {self.available_gib:.1f} GiB {memory})"
        )

    def record(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _gib(n: float) -> float:
    return round(n / GIB, 2)


def plan_memory(
    fp: Footprint,
    width: int,
    height: int,
    *,
    cuda_free: int | None,
    host_available: int,
    bf16_supported: bool = True,
    budget: int | None = None,
    dtype: str | None = None,
    batch: int = 1,
) -> MemoryPlan:
    """Choose device, dtype and the low-memory switches for one generation.

    Args:
        fp: the model's footprint.
        width, height: panorama size, pixels.
        cuda_free: free GPU memory in bytes, or None without a usable GPU.
        host_available: available host memory, bytes.
        bf16_supported: whether the GPU computes in bfloat16 (else float16).
        budget: cap on the GPU memory to use, bytes (None: the free memory).
        dtype: force a dtype ("float32", "bfloat16", "float16"), or None to choose.
        batch: denoiser batch (2 with classifier-free guidance).

    Raises:
        InputError: in one line, when the model cannot fit at all.
    """
    if dtype is not None and dtype not in _DTYPE_BYTES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(_DTYPE_BYTES)}")
    if cuda_free is None:
        dt = dtype or "float32"
        s = _DTYPE_BYTES[dt]
        act = estimate_activations(fp, width, height, dt, batch)
        need = fp.total_params * s + max(act.denoiser, act.vae_full)
        tiling = need > 0.9 * host_available
        if tiling:
            need = fp.total_params * s + max(act.denoiser, act.vae_tiled)
        if need > 0.9 * host_available:
            raise InputError(
                f"the panorama model needs ~{_gib(need)} GiB of host memory on the CPU at {width}x{height} and "
                f"{_gib(host_available)} GiB are available: use a GPU, a smaller model, or a smaller panorama.width"
            )
        return MemoryPlan(
            "cpu",
            dt,
            "cpu",
            tiling,
            tiling,
            False,
            _gib(host_available),
            _gib(need),
            ("no CUDA GPU: running on the CPU (slow)",)
            + (("VAE tiling: the full decode would not fit",) if tiling else ()),
        )

    dt = dtype or ("bfloat16" if bf16_supported else "float16")
    s = _DTYPE_BYTES[dt]
    avail = int(0.9 * cuda_free) - GIB // 2  # allocator fragmentation and the CUDA context's workspace
    if budget is not None:
        avail = min(avail, budget)
    act = estimate_activations(fp, width, height, dt, batch)
    weights = {k: v * s for k, v in fp.params.items()}
    total = sum(weights.values())
    den = weights.get(fp.denoiser, 0)
    vae = weights.get("vae", 0)
    notes = [f"{dt}: {'the GPU computes in bfloat16' if dt == 'bfloat16' else 'chosen'}"]

    def decode_need(base: int) -> tuple[int, bool]:
        if base + act.vae_full <= avail:
            return base + act.vae_full, False
        return base + act.vae_tiled, True

    # 1. everything resident
    vae_peak, tiling = decode_need(total)
    need = max(total + act.denoiser, vae_peak)
    if need <= avail:
        if tiling:
            notes.append("VAE tiling: the full-size decode would not fit beside the weights")
        return MemoryPlan("cuda", dt, "gpu", tiling, tiling, False, _gib(avail), _gib(need), tuple(notes))
    # 2. one component at a time
    if total > 0.9 * host_available:
        raise InputError(
            f"offloading the panorama model needs ~{_gib(total)} GiB of host memory and {_gib(host_available)} GiB "
            "are available: free host memory or use a smaller model"
        )
    others = max([v for k, v in weights.items() if k not in (fp.denoiser, "vae")] or [0])
    vae_peak, tiling = decode_need(vae)
    need = max(den + act.denoiser, vae_peak, others)
    if need <= avail:
        notes.append(f"model CPU offload: all weights ({_gib(total)} GiB) do not fit in {_gib(avail)} GiB")
        if tiling:
            notes.append("VAE tiling: the full-size decode would not fit")
        return MemoryPlan("cuda", dt, "model_offload", tiling, tiling, False, _gib(avail), _gib(need), tuple(notes))
    # 3. layer by layer
    layer = 4 * fp.largest_tensor * s  # a layer's weights plus transfer buffers
    attn_slicing = fp.denoiser == "unet"
    need = layer + max(act.denoiser, act.vae_tiled)
    if need <= avail:
        notes.append(f"sequential offload: the {fp.denoiser} alone ({_gib(den)} GiB) does not fit (slow)")
        notes.append("VAE tiling and slicing")
        if attn_slicing:
            notes.append("attention slicing")
        return MemoryPlan(
            "cuda", dt, "sequential_offload", True, True, attn_slicing, _gib(avail), _gib(need), tuple(notes)
        )
    smaller = max(256, (width // 2) // 64 * 64)
    raise InputError(
        f"the panorama model cannot fit: it needs ~{_gib(need)} GiB of GPU memory at {width}x{height} even with "
        f"sequential offload, and {_gib(max(avail, 0))} GiB are free; free the GPU or try --set panorama.width={smaller}"
    )


def probe_memory() -> tuple[int | None, int, bool, str]:
    """(free CUDA bytes or None, available host bytes, GPU bfloat16 support, device name)."""
    import torch

    host = _host_available()
    if not torch.cuda.is_available():
        return None, host, False, "cpu"
    free, _total = torch.cuda.mem_get_info()
    return int(free), host, bool(torch.cuda.is_bf16_supported()), torch.cuda.get_device_name(0)


def _host_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8 * GIB


def apply_plan(pipe, plan: MemoryPlan) -> None:
    """Move ``pipe`` (loaded in ``plan.dtype`` on the CPU) where the plan says, with its switches."""
    if plan.placement == "gpu":
        pipe.to("cuda")
    elif plan.placement == "model_offload":
        pipe.enable_model_cpu_offload()
    elif plan.placement == "sequential_offload":
        pipe.enable_sequential_cpu_offload()
    if plan.vae_tiling:
        pipe.vae.enable_tiling()
    if plan.vae_slicing:
        pipe.vae.enable_slicing()
    if plan.attention_slicing and hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
