"""The ``transformers`` depth backend: any transformers depth-estimation model, on a whole panorama.

The panorama is cut into overlapping perspective views covering the sphere
(:func:`worldgen.depth.views.sphere_views`), each view is estimated at the model's own input size,
the views are aligned globally and merged (:mod:`worldgen.depth.align`), the ground sets the
metric scale from the eye height, and sky is set to +inf.

Relative models (Depth Anything V1/V2 relative, DPT with a ViT, hybrid, BEiT or Swinv2 backbone)
predict disparity up to scale and shift: they are aligned with a scale and a shift per view. Metric
models (Depth Anything metric, ZoeDepth, Depth Pro, GLPN, TIPSv2 DPT, and DPT with DINOv2's depth
heads, which are the DPT configs with ``add_projection``) predict z-depth in metres: they are aligned
with a scale per view, and keep their own scale unless ``scale_from="ground"``. Two architectures
transformers lists for depth estimation are refused (:data:`REFUSED_MODEL_TYPES`): CHMv2 maps
canopy height from overhead images, and Prompt Depth Anything needs a LiDAR depth prompt. Two
families need their raw output read their own way (:func:`view_depth`): ZoeDepth sees a
reflect-padded image, so its output is cropped back to the view, and Depth Pro predicts inverse
depth relative to its focal length, which is exact here because each view's field of view is known.

Runs on CUDA in float16 when available (views batched), on the CPU in float32 otherwise; memory
is bounded by ``batch`` views at a time.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..registry import Backend, StageContext, StageResult, register_backend
from ..types import DepthMap, Panorama
from .align import align_views, merge_views
from .sky import connected_to_top, decide_scene, seen_sky, sky_gaps, sky_mask
from .views import cut_views, sphere_views

log = logging.getLogger(__name__)

try:
    from safetensors import SafetensorError as _SafetensorError  # a corrupt weights file: no OSError
except ImportError:  # pragma: no cover - safetensors comes with transformers

    class _SafetensorError(Exception):
        pass


METRIC_MODEL_TYPES = frozenset({"zoedepth", "depth_pro", "glpn", "tipsv2_dpt"})
"""transformers model types whose output is metric depth (metres) rather than relative disparity.
Depth Anything and Prompt Depth Anything say which in ``depth_estimation_type``; DPT by its head
(see :func:`is_metric_config`)."""

REFUSED_MODEL_TYPES: dict[str, str] = {
    "chmv2": "CHMv2 estimates canopy height from overhead (satellite or aerial) images, not depth from "
    "a ground-level view",
    "prompt_depth_anything": "Prompt Depth Anything needs a LiDAR depth prompt for every image, which a "
    "photo or a panorama does not have",
}
"""Depth-estimation architectures transformers loads that cannot give depth for a panorama, and why."""

_SUGGESTED = "depth-anything/Depth-Anything-V2-Small-hf"

KNOWN_MODEL_TYPES = METRIC_MODEL_TYPES | {"depth_anything", "dpt"} | set(REFUSED_MODEL_TYPES)
"""Every depth-estimation architecture of transformers 5.x that this backend has been run with (tiny
random models through the CLI). Another one still runs, read as :func:`is_metric_config` says."""


def _first_line(e: BaseException) -> str:
    """An exception's message cut to its first line and 200 characters (for one-line errors)."""
    return (str(e).strip().splitlines() or [""])[0][:200]


def is_metric_config(config) -> bool:
    """Whether a depth model's config says its output is metric depth (metres), not relative disparity.

    DPT's config carries no such flag; its only metric checkpoints, the DINOv2 depth heads
    (facebook/dpt-dinov2-*-nyu|kitti), are also its only ones with ``add_projection`` (MiDaS's DPT-Large,
    DPT-Hybrid, BEiT and Swinv2 checkpoints are relative), so that field tells them apart.
    ``--set depth.output=metric|disparity`` overrides this guess.
    """
    model_type = getattr(config, "model_type", "")
    if model_type in METRIC_MODEL_TYPES:
        return True
    if model_type == "dpt":
        return bool(getattr(config, "add_projection", False))
    return getattr(config, "depth_estimation_type", None) == "metric"


@dataclass(frozen=True)
class TransformersDepthConfig:
    """Options of the transformers depth backend.

    Args:
        model: the model's local folder; filled from ``--model depth=ID|PATH`` (or set it here).
        segmentation: optional semantic-segmentation model folder whose labels include "sky"
            (``--model segmentation=ID|PATH``); it then finds the sky instead of the colour cues.
        output: "auto" (from the model's config), "disparity" (relative) or "metric" (metres).
        scale_from: "auto" (ground for relative models, the model for metric ones), "ground" or "model".
        view_size: view width = height in pixels; 0 = the model's own input size.
        view_fov_deg: field of view of each view, degrees (>= 90 leaves no gap).
        batch: views per forward pass (bounds the memory).
        device: "auto" (CUDA when available), "cpu" or "cuda".
        detect_sky: set sky to +inf (True).
        max_depth: cap for far surfaces that are not sky, metres (3000: a range 1-3 km away keeps its
            distance; at 1000 m the independent Cycles hills, simulated, scored 0.055 instead of 0.022).
        scene: "auto" (decided as the prior decides, worldgen.depth.sky.is_indoor), "indoor" (no sky)
            or "outdoor": the same override as the prior's ``depth.scene``.
    """

    model: str = ""
    segmentation: str = ""
    output: str = "auto"
    scale_from: str = "auto"
    view_size: int = 0
    view_fov_deg: float = 100.0
    batch: int = 4
    device: str = "auto"
    detect_sky: bool = True
    max_depth: float = 3000.0
    scene: str = "auto"

    def __post_init__(self) -> None:
        # Checked here, so that a bad --set or worldgen.toml value fails when the pipeline builds the
        # config, before any stage writes a file (found as a new user: batch = "two" in worldgen.toml
        # was a TypeError traceback after the panorama stage had run; batch = 0 was refused only then).
        for name in ("model", "segmentation"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"depth.{name} must be a folder or a Hugging Face id (a string)")
        for name, allowed in (
            ("output", ("auto", "disparity", "metric")),
            ("scale_from", ("auto", "ground", "model")),
            ("device", ("auto", "cpu", "cuda")),
            ("scene", ("auto", "indoor", "outdoor")),
        ):
            if getattr(self, name) not in allowed:
                raise InputError(f"depth.{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        for name, least in (("view_size", 0), ("batch", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise InputError(f"depth.{name} must be a whole number >= {least}, not {v!r}")
        if not isinstance(self.detect_sky, bool):
            raise InputError(f"depth.detect_sky must be true or false, not {self.detect_sky!r}")
        for name, lo, hi in (("view_fov_deg", 1.0, 179.0), ("max_depth", 1e-3, 1e9)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise InputError(f"depth.{name} must be a number in [{lo:g}, {hi:g}], not {v!r}")


def _unavailable() -> str | None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return "transformers is not installed; pip install 'worldgen[models]'"
    return None


@contextlib.contextmanager
def _quiet_transformers():
    """transformers prints progress bars and advice while loading; the pipeline has its own progress."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    with contextlib.suppress(AttributeError):
        transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        with contextlib.suppress(AttributeError):
            transformers.logging.enable_progress_bar()


def check_depth_folder(path: Path) -> None:
    """What can be said against a depth model folder from its config.json alone (no torch, no
    transformers, no weights). The pipeline runs this before any stage writes a file, so a wrong
    folder leaves no half-made run behind; the loader checks the rest.

    A config saved by ``save_pretrained`` names its classes in ``architectures``; transformers' depth
    models all end in ``ForDepthEstimation``. A config without that list is left to the loader.
    """
    import json

    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        return  # the loader says so (a plugin backend may read other folders)
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"depth model {path}: config.json is not valid JSON ({e}); re-save the model") from e
    if not isinstance(cfg, dict):
        raise InputError(f"depth model {path}: config.json is not a JSON object; re-save the model")
    model_type = cfg.get("model_type")
    why = REFUSED_MODEL_TYPES.get(model_type)
    if why:
        raise InputError(f"depth model {path} is {model_type}: {why}; use a depth model such as {_SUGGESTED}")
    archs = cfg.get("architectures")
    if isinstance(archs, list) and archs and not any("DepthEstimation" in str(a) for a in archs):
        raise InputError(
            f"depth model {path} is a {model_type!r} model ({', '.join(map(str, archs))}), not a depth-estimation "
            f"model; give a depth model such as {_SUGGESTED}"
        )
    if model_type is None:
        # transformers then guesses the type from the folder's name; a name that holds none fails in the
        # loader, after the panorama stage (found as a new user)
        try:
            from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        except ImportError:
            return
        if not any(t in str(path) for t in CONFIG_MAPPING_NAMES):
            raise InputError(
                f"cannot load the depth model in {path}: its config.json has no model_type; add the model's "
                '(e.g. "model_type": "depth_anything") or re-save the model with save_pretrained'
            )
        return
    if isinstance(model_type, str) and model_type not in KNOWN_MODEL_TYPES:
        # Found as a new user: a model_type transformers does not know was refused by the loader, after the
        # panorama stage had written its files, with transformers' long text and no command. Only such a
        # folder pays for importing transformers here (it imports torch).
        try:
            from transformers import __version__
            from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
            from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES
        except ImportError:
            return  # the backend says transformers is missing
        if model_type not in CONFIG_MAPPING_NAMES:
            raise InputError(
                f"cannot load the depth model in {path}: its config.json says model_type {model_type!r}, which "
                f"transformers {__version__} does not know; if the model is newer, upgrade it "
                "(pip install -U transformers), else correct model_type in config.json"
            )
        if model_type not in MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES:
            raise InputError(
                f"cannot load the depth model in {path}: it is a {model_type!r} model, not one of transformers' "
                f"depth-estimation architectures; give a depth model such as {_SUGGESTED}"
            )


def check_segmentation_folder(path: Path) -> None:
    """The segmentation role's counterpart of :func:`check_depth_folder` (config.json only): a folder
    whose ``architectures`` holds no ``...ForSemanticSegmentation`` class is refused before any stage
    runs. Found as a new user: a depth model given as the segmentation model was loaded as a DPT
    segmentation model, whose head does not fit, and stopped with a RuntimeError traceback after the
    panorama stage had written its files."""
    import json

    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the loader says what is wrong with the folder
    archs = cfg.get("architectures") if isinstance(cfg, dict) else None
    if isinstance(archs, list) and archs and not any("SemanticSegmentation" in str(a) for a in archs):
        raise InputError(
            f"segmentation model {path} is a {cfg.get('model_type')!r} model ({', '.join(map(str, archs))}), not a "
            "semantic-segmentation model; give one with a 'sky' label (e.g. nvidia/segformer-b0-finetuned-ade-512-512)"
        )


def load_depth_model(path: str | Path, device: str = "cpu", dtype=None):
    """Load a transformers depth model and its image processor from a local folder (safetensors only).

    Returns:
        A tuple: **model** (eval mode, on ``device``), **processor** and **is_metric**.
    """
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"depth model folder {path} has no config.json; give a folder saved with save_pretrained")
    check_depth_folder(path)
    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot load the depth model in {path}: {first}") from e
        why = REFUSED_MODEL_TYPES.get(config.model_type)
        if why:
            raise InputError(
                f"depth model {path} is {config.model_type}: {why}; use a depth model such as {_SUGGESTED}"
            )
        from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES as depth_types

        if config.model_type not in depth_types:
            raise InputError(
                f"cannot load the depth model in {path}: it is a {config.model_type!r} model, not one of "
                f"transformers' depth-estimation architectures ({', '.join(sorted(depth_types))})"
            )
        if not (path / "preprocessor_config.json").is_file():
            # model.save_pretrained alone leaves the image processor (input size, normalisation) behind
            # (a model built from a config has no id to fetch a processor from: name its class too)
            try:
                from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

                names = IMAGE_PROCESSOR_MAPPING_NAMES.get(config.model_type) or {}
                names = names.values() if isinstance(names, dict) else [n for n in names if n]
                cls = next(iter(names), None)
            except ImportError:
                cls = None
            own = f", or {cls}(...).save_pretrained(<this folder>) with the model's input size" if cls else ""
            raise InputError(
                f"depth model folder {path} has no preprocessor_config.json (its image processor); save it too: "
                f"AutoImageProcessor.from_pretrained(<the model's id>).save_pretrained(<this folder>){own}"
            )
        try:
            model, info = AutoModelForDepthEstimation.from_pretrained(
                path, use_safetensors=True, local_files_only=True, output_loading_info=True
            )
        except (OSError, ValueError, KeyError, _SafetensorError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot load the depth model in {path}: {first}") from e
        missing = list(info.get("missing_keys", []))
        if missing:
            raise InputError(
                f"depth model {path} lacks {len(missing)} weight(s) (e.g. {missing[0]}); "
                "it would run with random weights: re-save it with save_pretrained"
            )
        try:
            processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError, ImportError) as e:
            processor = None
            if config.model_type in PlainViewProcessor.MODEL_TYPES and "torchvision" in str(e):
                # transformers' Depth Pro and TIPSv2 processors exist only as torchvision backends, and
                # PyPI's torchvision wheels need a CUDA build of torch: on a CPU-only install they cannot
                # be imported although their steps are plain (see PlainViewProcessor).
                processor = PlainViewProcessor.from_folder(path, config.model_type)
            if processor is None:
                hint = " (pip install torchvision matching your torch build)" if "torchvision" in str(e) else ""
                raise InputError(
                    f"depth model {path} has no usable image processor (preprocessor_config.json){hint}: "
                    + str(e).strip().splitlines()[0]
                ) from e
    is_metric = is_metric_config(config)
    return model.eval().to(device=device, dtype=dtype or torch.float32), processor, is_metric


def load_segmentation_model(path: str | Path, device: str = "cpu", dtype=None):
    """Load a transformers semantic-segmentation model (safetensors only) and the ids of its sky labels.

    Returns:
        A tuple: **model**, **processor** and **sky_ids** (label ids whose name contains "sky").
    """
    import torch
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    path = Path(path)
    with _quiet_transformers():
        try:
            model, info = AutoModelForSemanticSegmentation.from_pretrained(
                path, use_safetensors=True, local_files_only=True, output_loading_info=True
            )
            processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, _SafetensorError) as e:
            # RuntimeError: weights of another shape (e.g. a depth model's head), transformers'
            # "ignore_mismatched_sizes" error
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot load the segmentation model in {path}: {first}") from e
    if info.get("missing_keys"):
        raise InputError(
            f"segmentation model {path} lacks weights ({info['missing_keys'][0]}); re-save it with save_pretrained"
        )
    labels = getattr(model.config, "id2label", {}) or {}
    sky_ids = sorted(int(i) for i, name in labels.items() if "sky" in str(name).lower())
    if not sky_ids:
        raise InputError(f"segmentation model {path} has no 'sky' label; give a model trained with one (e.g. ADE20K)")
    return model.eval().to(device=device, dtype=dtype or torch.float32), processor, sky_ids


def segment_sky(model, processor, sky_ids, views: np.ndarray, cams, height: int, batch: int, device: str) -> np.ndarray:
    """Sky probability per panorama pixel from a segmentation model run on the views. [H, 2H] float32"""
    import torch
    import torch.nn.functional as F

    from ..geometry.equirect import perspective_to_equirect

    s = views.shape[1]
    dtype = next(model.parameters()).dtype
    u8 = np.clip(np.round(views * 255), 0, 255).astype(np.uint8)
    num = np.zeros((height, 2 * height), np.float32)
    den = np.zeros((height, 2 * height), np.float32)
    for i in range(0, len(views), batch):
        inputs = processor(images=list(u8[i : i + batch]), return_tensors="pt")
        with torch.inference_mode():
            logits = model(pixel_values=inputs["pixel_values"].to(device=device, dtype=dtype)).logits
        # the sky probability at the logits' resolution, then one channel up to the view size: upsampling
        # all the labels' logits (150 for ADE20K) first would hold batch x 150 x s x s floats (0.6 GB at 4 x 518)
        p_low = logits.float().softmax(1)[:, sky_ids].sum(1, keepdim=True)
        p_sky = F.interpolate(p_low, size=(s, s), mode="bilinear", align_corners=False)[:, 0].cpu().numpy()
        for k, p in enumerate(p_sky):
            pano, cov = perspective_to_equirect(p, cams[i + k], height, "bilinear")
            num += np.where(cov, pano, 0)
            den += cov
    return np.where(den > 0, num / np.maximum(den, 1), 0).astype(np.float32)


def _check_output(raw: np.ndarray, valid: np.ndarray, seen: np.ndarray, is_metric: bool, model: str) -> None:
    """A model whose output carries no depth (a metric head that gives zero or less nearly everywhere,
    a constant map) is refused with what it gave, instead of failing later in the alignment with an
    error about the views. raw, valid, seen: [N, s, s] (seen: the pixels that are not sky)."""
    n_seen = int(seen.sum())
    if not n_seen:
        return
    vals = raw[seen]
    if is_metric and valid.sum() < 0.01 * n_seen:
        raise InputError(
            f"depth model {model} predicted a positive distance on {100.0 * valid.sum() / n_seen:.2f} % of the "
            f"pixels that are not sky (its output lies in {float(vals.min()):.3g}..{float(vals.max()):.3g} m): it "
            "gives no usable metric depth; check that the folder holds trained weights, or set depth.output=disparity "
            "if it predicts disparity"
        )
    if float(vals.max() - vals.min()) <= 1e-6 * max(abs(float(vals.max())), 1e-12):
        raise InputError(
            f"depth model {model} predicted the same value ({float(vals.max()):.3g}) for every pixel: it gives no "
            "depth; check that the folder holds trained weights"
        )


def check_depth_model(path: Path, role: str = "depth") -> str | None:
    """For ``worldgen info``: None when the folder loads for ``role`` (``depth``: a depth model,
    ``segmentation``: a segmentation model with a sky label), else why not."""
    try:
        if role == "segmentation":
            check_segmentation_folder(Path(path))
            load_segmentation_model(path, "cpu")
        else:
            model, processor, is_metric = load_depth_model(path, "cpu")
            # one view through the model, as a run's first batch goes: a folder that loads but whose
            # processor or head cannot run (a config transformers' own code cannot run, a processor
            # whose sizes fail) answered "yes" here and failed at the depth stage
            size = model_view_size(processor)
            rng = np.random.default_rng(0)
            grad = np.linspace(0.2, 0.8, size, dtype=np.float32)[:, None, None] * np.ones((1, size, 3), np.float32)
            view = np.clip(grad + rng.normal(0, 0.05, (size, size, 3)).astype(np.float32), 0, 1)[None]
            raw = predict_views(model, processor, view, 1, "cpu")
            if not np.isfinite(raw).any() or (is_metric and not (raw > 1e-6).any()):
                return f"depth model {path} loads but gives no depth on a test view (output {float(np.nanmin(raw)):.3g}..{float(np.nanmax(raw)):.3g})"
    except InputError as e:
        return str(e)
    except Exception as e:  # any loader failure is an answer here, not a crash
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return None


class PlainViewProcessor:
    """The image processing of Depth Pro and TIPSv2 DPT without torchvision: resize, rescale, normalise.

    transformers has these processors only as torchvision backends; their steps are plain:
    Depth Pro rescales and normalises *before* its bilinear resize (without antialiasing), TIPSv2
    resizes (bilinear), rescales and does not normalise. transformers' own class is used instead
    whenever it can be imported. The values come from the model folder's ``preprocessor_config.json``.
    """

    MODEL_TYPES = {"depth_pro": (1536, True), "tipsv2_dpt": (448, False)}
    """model type -> (default side, normalise before resizing)."""

    def __init__(self, size: int, mean, std, rescale_factor: float, do_normalize: bool, bicubic: bool, first: bool):
        self.size = {"height": int(size), "width": int(size)}
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.rescale_factor, self.do_normalize, self.bicubic = float(rescale_factor), bool(do_normalize), bicubic
        self.normalize_first = first

    @classmethod
    def from_folder(cls, path: Path, model_type: str) -> PlainViewProcessor | None:
        import json

        f = Path(path) / "preprocessor_config.json"
        if not f.is_file() or model_type not in cls.MODEL_TYPES:
            return None
        default_side, first = cls.MODEL_TYPES[model_type]
        c = json.loads(f.read_text())
        size = c.get("size") or {"height": default_side}
        side = (size.get("height") or size.get("shortest_edge")) if isinstance(size, dict) else size
        return cls(
            side or default_side,
            c.get("image_mean") or [0.5, 0.5, 0.5],
            c.get("image_std") or [0.5, 0.5, 0.5],
            c.get("rescale_factor", 1 / 255) if c.get("do_rescale", True) else 1.0,
            c.get("do_normalize", model_type == "depth_pro"),
            c.get("resample", 2) == 3,  # PIL's BICUBIC; both use BILINEAR (2)
            first,
        )

    def __call__(self, images, return_tensors="pt"):
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.ascontiguousarray(np.stack(images).astype(np.float32).transpose(0, 3, 1, 2)))
        side = self.size["height"]
        mode = "bicubic" if self.bicubic else "bilinear"
        if not self.normalize_first and t.shape[-2:] != (side, side):
            t = F.interpolate(t, size=(side, side), mode=mode, align_corners=False, antialias=True)
        t = t * self.rescale_factor
        if self.do_normalize:
            t = (t - torch.from_numpy(self.mean)[:, None, None]) / torch.from_numpy(self.std)[:, None, None]
        if self.normalize_first:
            t = F.interpolate(t, size=(side, side), mode=mode, align_corners=False)
        return {"pixel_values": t}


def view_depth(outputs, processor, model_type: str, size: int, fov_deg: float, padding: tuple[int, int] | None = None):
    """A depth model's raw output on a batch of views -> the model's quantity on the view grid.

    Args:
        outputs: the model's output (``predicted_depth`` [N, h, w] or [N, 1, h, w]).
        processor: the image processor that made the inputs.
        model_type: ``model.config.model_type``.
        size: the views' side, pixels.
        fov_deg: the views' field of view, degrees.
        padding: (side of the view as the processor resized it, side after its centre padding), from
            :func:`processor_padding`; the output covers the padded input and is cropped back.

    Returns:
        [N, size, size] float32 tensor: disparity (relative models) or z-depth in metres (metric).
    """
    import torch
    import torch.nn.functional as F

    pred = outputs.predicted_depth
    if pred.ndim == 4:
        pred = pred[:, 0]
    pred = pred.float()
    if model_type == "zoedepth" and getattr(processor, "do_pad", True):
        # ZoeDepth reflect-pads each image by int(sqrt(side / 2) * 3) pixels per border before resizing
        # it (its processor's rule), so the output covers the padded view: crop the padding back off.
        pad = int(math.sqrt(size / 2) * 3)
        pred = F.interpolate(pred[:, None], size=(size + 2 * pad,) * 2, mode="bilinear", align_corners=False)[:, 0]
        return pred[:, pad : pad + size, pad : pad + size]
    if padding is not None:
        # A DPT-family processor that resizes, then centre-pads to a multiple of size_divisor: the output
        # covers the padded input (left uncropped, every view's depth would shrink towards its centre).
        inner, outer = padding
        left = (outer - inner) // 2  # transformers' pad_image puts the odd pixel on the right/bottom
        pred = F.interpolate(pred[:, None], size=(outer, outer), mode="bilinear", align_corners=False)[:, 0]
        pred = pred[:, left : left + inner, left : left + inner]
    if model_type == "depth_pro":
        # Depth Pro predicts inverse depth in units of the focal length: z = f / (W * pred). Its own
        # head guesses the field of view; here it is known exactly, and W / f = 2 tan(fov / 2).
        w_over_f = 2.0 * math.tan(math.radians(fov_deg) / 2.0)
        pred = 1.0 / torch.clamp(pred * w_over_f, 1e-4, 1e4)
    return F.interpolate(pred[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def processor_padding(processor, model_type: str, view: np.ndarray) -> tuple[int, int] | None:
    """How a DPT-family processor (DPT, Depth Anything) pads one view: (side after its resize, side
    after its centre padding to a multiple of ``size_divisor``), or None when it adds no padding.

    Measured on the view itself (the processor run once with and once without ``do_pad``), so its own
    resize rule (``keep_aspect_ratio``, ``ensure_multiple_of``) need not be copied here. ZoeDepth pads
    by its own rule (see :func:`view_depth`).
    """
    divisor = getattr(processor, "size_divisor", None)
    if model_type == "zoedepth" or not getattr(processor, "do_pad", False) or not isinstance(divisor, int):
        return None
    if divisor <= 1:
        return None
    try:
        outer = processor(images=[view], return_tensors="pt")["pixel_values"].shape[-1]
        inner = processor(images=[view], do_pad=False, return_tensors="pt")["pixel_values"].shape[-1]
    except (TypeError, ValueError):
        return None  # a processor without a do_pad argument: nothing known to crop
    return (int(inner), int(outer)) if inner != outer else None


def model_view_size(processor, requested: int = 0) -> int:
    """The square view side to cut: ``requested`` (0 = the size the processor resizes to), rounded up
    to a size the processor passes through unchanged.

    That is a multiple of its ``ensure_multiple_of`` and of its ``size_divisor``: DPT pads an image to
    a multiple of ``size_divisor`` (DINOv2's depth heads do not resize at all), GLPN crops it down to one;
    either would shift the output against the view.
    """
    size = getattr(processor, "size", None)

    def get(k):  # size is an int, a dict, or transformers 5's SizeDict (attributes and item access)
        if size is None or isinstance(size, (int, float)):
            return None
        return size.get(k) if isinstance(size, dict) else getattr(size, k, None)

    if requested:
        s = int(requested)
    elif isinstance(size, (int, float)):
        s = int(size)
    else:
        s = get("height") or get("shortest_edge") or get("width") or 384
    # (ZoeDepth's processor defaults to 1/32, which int() made 0 and the division below failed:
    # a multiple of less than one pixel constrains nothing)
    mult = max(1, int(round(float(getattr(processor, "ensure_multiple_of", 1) or 1))))
    divisor = getattr(processor, "size_divisor", None)
    # A processor that resizes to a fixed height pads after resizing whatever it is given: the view's
    # side cannot avoid that (predict_views crops the padding off instead), and rounding the side up to
    # lcm(ensure_multiple_of, size_divisor) only multiplied the work (found as a new user: 56 -> 224 px).
    resizes_to_fixed = bool(getattr(processor, "do_resize", False)) and bool(get("height"))
    if isinstance(divisor, int) and divisor > 1 and not resizes_to_fixed:
        mult = math.lcm(mult, divisor)
    return max(mult, int(math.ceil(int(s) / mult) * mult))


def predict_views(model, processor, views: np.ndarray, batch: int, device: str, progress=None, fov_deg: float = 100.0):
    """Run the model on views [N, s, s, 3] (float in [0, 1]) of ``fov_deg`` degrees.

    Returns:
        [N, s, s] float32: disparity (relative models) or z-depth in metres (metric models).
    """
    import torch

    n, s = views.shape[0], views.shape[1]
    model_type = getattr(model.config, "model_type", "")
    out = np.empty((n, s, s), np.float32)
    dtype = next(model.parameters()).dtype
    u8 = np.clip(np.round(views * 255), 0, 255).astype(np.uint8)
    name = getattr(model.config, "_name_or_path", "") or model_type
    try:
        # Found as a new user: a preprocessor_config.json whose size is {"shortest_edge": N} makes DPT's
        # processor fail on every view (transformers' own error then fails too: an AttributeError
        # traceback, exit 1). The processor's steps are the folder's, so say which file to check.
        padding = processor_padding(processor, model_type, u8[0]) if n else None
        if n:
            processor(images=list(u8[:1]), return_tensors="pt")
    except Exception as e:  # noqa: BLE001 - any failure of the folder's processor is the folder's
        first = _first_line(e)
        raise InputError(
            f"the image processor of depth model {name} ({model_type}) fails on a {s}x{s} px view: "
            f"{type(e).__name__}: {first}; check its preprocessor_config.json (re-save it from the model's "
            "id: AutoImageProcessor.from_pretrained(ID).save_pretrained(FOLDER))"
        ) from e
    for i in range(0, n, batch):
        chunk = list(u8[i : i + batch])
        inputs = processor(images=chunk, return_tensors="pt")
        pixels = inputs["pixel_values"].to(device=device, dtype=dtype)
        with torch.inference_mode():
            try:
                raw = model(pixel_values=pixels)
            except (RuntimeError, IndexError, ValueError) as e:
                if "out of memory" in str(e).lower():
                    raise  # the memory planner's business, not the folder's
                # A folder whose config the model's own code cannot run (found as a new user: a
                # ZoeDepth with two bin configurations and 1 patch-transformer layer; transformers
                # hard-codes 4) is a bad model folder: say so in one line, not with a traceback.
                first = _first_line(e)
                raise InputError(
                    f"depth model {name} ({model_type}) failed on {len(chunk)} view(s) of {s}x{s} px, "
                    f"input {tuple(pixels.shape)}: {type(e).__name__}: {first}; check its config.json "
                    "and preprocessor_config.json (a published model runs)"
                ) from e
            pred = view_depth(raw, processor, model_type, s, fov_deg, padding)
        out[i : i + len(chunk)] = pred.cpu().numpy()
        if progress:
            progress(min(i + batch, n) / n)
    return out


def _device(choice: str) -> str:
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise InputError(f"depth.device must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("depth.device=cuda but no CUDA GPU is visible; use depth.device=auto or cpu")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def seen_all_round(seen: np.ndarray, min_lat_deg: float = 12.0, share: float = 0.9) -> bool:
    """True when the pixels seen ([H, W] bool) reach below ``min_lat_deg`` under the horizon in at
    least ``share`` of the columns: a partial panorama seen all round, whose own pixels hold the
    floor in every direction. Not a photo's narrow wedge, nor a 200° sweep of a room: aligned on
    their own pixels, a simulated kitchen sweep went 0.142 -> 0.847 AbsRel (a counter's top taken
    for the floor), as a kitchen photo came out 2.2x too far."""
    h = seen.shape[0]
    low = seen[int(np.ceil(h * (90.0 + min_lat_deg) / 180.0)) :]
    return bool(low.any(0).mean() >= share)


def estimate_depth(
    panorama: Panorama,
    eye_height: float,
    config: TransformersDepthConfig,
    progress=None,
    seen: np.ndarray | None = None,
):
    """Depth for a whole panorama with a transformers model (see the module docstring).

    ``seen`` ([H, W] bool, optional): the pixels actually seen, where the rest is a made-up backdrop
    (a photo world, a partial panorama): no evidence of a sky overhead (worldgen.depth.sky.is_indoor)
    nor in the image (sky.seen_sky).

    Returns:
        A tuple: **depth** (:class:`DepthMap`, metres, +inf on sky) and **report** (dict).
    """
    import torch

    if not config.model:
        raise InputError("the transformers depth backend needs a model: --model depth=ID|PATH (or worldgen.toml)")
    for name, value, allowed in (
        ("output", config.output, ("auto", "disparity", "metric")),
        ("scale_from", config.scale_from, ("auto", "ground", "model")),
    ):
        if value not in allowed:
            raise InputError(f"depth.{name} must be one of {', '.join(allowed)}, not {value!r}")
    if config.batch < 1:
        raise InputError(f"depth.batch {config.batch} must be >= 1")
    device = _device(config.device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    progress = progress or (lambda f, m="": None)
    progress(0.02, "loading the depth model")
    model, processor, is_metric = load_depth_model(config.model, device, dtype)
    model_type = getattr(model.config, "model_type", "")
    if config.output != "auto":
        is_metric = config.output == "metric"
    size = model_view_size(processor, config.view_size)
    cams = sphere_views(size, config.view_fov_deg)
    h = panorama.height

    # sky first (a segmentation model's, else colour cues): it is left out of the alignment
    views = cut_views(panorama.image, cams)
    sky_from = "colour"
    if config.detect_sky and config.segmentation:
        progress(0.03, "segmenting the sky")
        seg, seg_proc, sky_ids = load_segmentation_model(config.segmentation, device, dtype)
        p_sky = segment_sky(seg, seg_proc, sky_ids, views, cams, h, config.batch, device)
        del seg
        if device == "cuda":
            torch.cuda.empty_cache()
        sky0 = connected_to_top((p_sky > 0.5) & (np.arange(h) < h // 2)[:, None])
        sky_from = "segmentation"
    elif config.detect_sky:
        sky0 = sky_mask(panorama)
    else:
        sky0 = np.zeros((h, panorama.width), bool)
    indoor, scene_facts = decide_scene(panorama, sky0, seen, config.scene)
    if indoor:
        sky0[:] = False
    elif sky_from == "colour" and config.detect_sky:
        sky0 = seen_sky(panorama, sky0, seen)
        # the sky seen under and between crowns (outdoors only: see sky_gaps)
        sky0 |= sky_gaps(panorama, sky0)
    sky_views = cut_views(sky0.astype(np.float32)[..., None], cams)[..., 0] > 0.5
    progress(0.05, f"{len(cams)} views of {size}px on {device}")
    raw = predict_views(
        model,
        processor,
        views,
        config.batch,
        device,
        lambda f: progress(0.05 + 0.75 * f, "estimating"),
        fov_deg=config.view_fov_deg,
    )
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    if is_metric:
        valid = (raw > 1e-6) & ~sky_views
        values = np.where(raw > 1e-6, 1.0 / np.maximum(raw, 1e-6), 0.0).astype(np.float32)
    else:
        values = raw
        valid = ~sky_views
    _check_output(raw, valid, ~sky_views, is_metric, config.model)
    use_ground = config.scale_from == "ground" or (config.scale_from == "auto" and not is_metric)
    progress(0.82, "aligning the views")

    def align(ok):
        return align_views(
            values,
            ok,
            cams,
            eye_height,
            fit_shift=not is_metric,
            use_ground=use_ground,
            grid_height=min(128, max(32, h // 2)),
        )

    # A partial panorama seen all round is aligned on its own pixels: a made-up backdrop in the
    # overlaps pulled the views apart (docs/photo.md, simulated). A photo's wedge or a partial sweep
    # is not (see seen_all_round).
    aligned_on = "whole sphere"
    al = None
    if seen is not None and seen_all_round(seen):
        seen_views = cut_views(seen.astype(np.float32)[..., None], cams)[..., 0] > 0.5
        al = align(valid & seen_views)
        aligned_on = "seen pixels"
        if use_ground and not al.ground_found:  # no floor among them: the whole sphere, as a photo's
            al, aligned_on = None, "whole sphere"
    if al is None:
        al = align(valid)
    progress(0.9, "merging")
    q, weight = merge_views(values, valid, cams, al, h)
    far_q = 1.0 / config.max_depth
    sky = sky0.copy()
    if config.detect_sky and not indoor:
        # pixels no valid view reached, or at (or beyond) infinity, above the horizon: sky
        upper = (np.arange(h) < h // 2)[:, None]
        sky |= upper & (q <= far_q) & (sky0 | (weight <= 0))
    depth = np.where(q > far_q, 1.0 / np.maximum(q, 1e-12), config.max_depth).astype(np.float32)
    depth[sky] = np.inf
    report = {
        "model_type": model_type,
        "model_kind": "metric" if is_metric else "relative",
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "views": len(cams),
        "view_size": size,
        "scene": "indoor" if indoor else "outdoor",
        "scene_from": config.scene,
        "sky_from": sky_from if config.detect_sky else "off",
        **scene_facts,
        **al.report,
        "capped_pixels": int(((q <= far_q) & ~sky).sum()),
        "aligned_on": aligned_on,
    }
    return DepthMap(depth, sky), report


def _run(ctx: StageContext) -> StageResult:
    from ..stages.photo import seen_pixels
    from .report import depth_report

    pano = ctx.inputs["panorama"]
    seen = seen_pixels(ctx.inputs.get("semantics"), (pano.height, pano.width))
    depth, rep = estimate_depth(pano, ctx.request.eye_height, ctx.config, ctx.progress, seen)
    return StageResult(artifacts={"depth": depth}, report={**depth_report(depth), **rep})


register_backend(
    Backend(
        stage="depth",
        name="transformers",
        run=_run,
        # 2: sky.py closes faint skylines; a cream ceiling is no sky; 3: sky seen under and between
        # crowns outdoors (sky_gaps); 4: sky round 4 (cool-cast ceilings, a night sky's glow)
        # 5: a metric model keeps the scale of the views with samples (align_views), not a mean
        # over every view's scale; 6: sky.py measures edges at 512-767 rows on larger panoramas;
        # 7: a bright piece outlined by hard edges all round is a lit surface, not a cloud; 8: the
        # ground holds the metric scale when the views disagree (align_views: the level held);
        # 9: far surfaces capped at 3 km, not 1 km (max_depth); 10: under a made-up zenith (a photo
        # world, a partial panorama) a pale sky that is not blue is a ceiling unless the horizon is open;
        # 11: there, a seen piece of sky with no clear blue is dropped where the seen sky is mostly blue;
        # 12: depth.scene=indoor|outdoor overrides the decision, as the prior's does; 13: a partial
        # panorama seen all round is aligned on its own pixels (seen_all_round); 14: each seen piece
        # of sky judged on its own pixels (sky.seen_sky: colour beside a bright blue, hard edges inside)
        version="14",
        config=TransformersDepthConfig,
        summary="any transformers depth model (--model depth=ID|PATH) on 18 overlapping views, aligned "
        "globally, merged, metric from the eye height",
        unavailable=_unavailable,
        models={"depth": "model", "segmentation": "segmentation"},
        check_model=check_depth_model,
    )
)

__all__ = [
    "KNOWN_MODEL_TYPES",
    "REFUSED_MODEL_TYPES",
    "PlainViewProcessor",
    "processor_padding",
    "TransformersDepthConfig",
    "check_depth_model",
    "check_segmentation_folder",
    "estimate_depth",
    "is_metric_config",
    "load_depth_model",
    "load_segmentation_model",
    "view_depth",
]
