"""Seamless 360° generation: the left and right image edges are neighbours on the sphere.

Two mechanisms, chosen by the denoiser's architecture:

- **Circular convolutions** (:func:`circular_convs`): every 2-D convolution of a network pads its
  input circularly in width (and with zeros in height, as before). A UNet or VAE built from
  convolutions, group norms and position-free attention then commutes with horizontal rolls, so
  what it paints wraps around exactly. Used for UNet denoisers (SD 1.x/2.x, SDXL) and VAEs.
- **Latent wrap-blend** (:class:`WrapBlend`): transformer denoisers (FLUX, SD3) have no convolutions
  to pad and attend with absolute (RoPE) positions, so padding cannot apply. The latent is generated
  ``extend`` columns wider than the panorama; the extra columns show the same longitudes as the
  first ones. After every denoising step both copies are replaced by a cross-fade: the extension's
  copy (which continues the right edge) dominates at the left edge, the original at the band's end,
  so the image continues from column W-1 into column 0. The initial noise already repeats, so the
  two copies start identical and the blend only reconciles what the model does differently.

:func:`seam_continuity` measures the result on a decoded image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._check import check_shape


class _CircularHandle:
    """Undo for :func:`circular_convs`: restores every patched convolution."""

    def __init__(self, patched: list[tuple[object, tuple[int, int], object]]):
        self._patched = patched

    @property
    def count(self) -> int:
        return len(self._patched)

    def remove(self) -> None:
        for conv, padding, hook in self._patched:
            hook.remove()
            conv.padding = padding
        self._patched = []

    def __enter__(self) -> _CircularHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def circular_convs(module) -> _CircularHandle:
    """Make every ``nn.Conv2d`` inside ``module`` pad circularly in width.

    Each convolution with a width padding p > 0 keeps its height padding and gets p columns copied
    from the opposite edge instead of zeros (a forward pre-hook pads, the convolution's own width
    padding is set to 0). Works under accelerate's offload hooks and peft's LoRA wrappers (their
    inner convolutions are patched too and each pads its own input).

    Returns:
        A handle with ``.count`` (convolutions patched) and ``.remove()``; also a context manager.
    """
    import torch.nn.functional as F
    from torch import nn

    patched = []
    for conv in module.modules():
        if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        ph, pw = conv.padding
        if pw == 0:
            continue

        def pad(_mod, args, pw=pw):
            return (F.pad(args[0], (pw, pw, 0, 0), mode="circular"), *args[1:])

        hook = conv.register_forward_pre_hook(pad)
        patched.append((conv, (ph, pw), hook))
        conv.padding = (ph, 0)
    return _CircularHandle(patched)


@dataclass(frozen=True)
class LatentLayout:
    """How a pipeline holds its latents, so a width-wise operation can address latent columns.

    Args:
        packed: FLUX-style tokens [B, (h/2)*(w/2), 4C] (2x2 latent patches), else [B, C, h, w].
        height: latent rows (pixels / VAE scale factor).
        width: latent columns of the generated (extended) latent.
    """

    packed: bool
    height: int
    width: int

    def grid(self, latents):
        """A view with latent-grid columns on axis -2 (packed: [B, h/2, w/2, D]) or -1 ([B, C, h, w])."""
        if self.packed:
            b, _, d = latents.shape
            return latents.reshape(b, self.height // 2, self.width // 2, d)
        return latents

    def flat(self, grid, like):
        return grid.reshape(like.shape) if self.packed else grid

    @property
    def unit(self) -> int:
        """Latent columns per grid column (2 when packed)."""
        return 2 if self.packed else 1


class WrapBlend:
    """Per-step callback that keeps an extended latent consistent across the ±180° seam.

    Args:
        layout: the latent layout of the extended latent (``width`` = core + extension columns).
        extend: extension width, latent columns (a multiple of ``layout.unit``).

    Use as ``callback_on_step_end`` of a diffusers pipeline (it edits ``latents``), and
    :meth:`init_noise` to make the initial noise repeat across the seam.
    """

    def __init__(self, layout: LatentLayout, extend: int, on_step: Callable[[int], None] | None = None):
        if extend <= 0 or extend % layout.unit or extend >= layout.width:
            raise ValueError(f"extension {extend} must be a positive multiple of {layout.unit} below {layout.width}")
        self.layout = layout
        self.extend = extend
        self.on_step = on_step

    @property
    def core(self) -> int:
        """Latent columns of the panorama itself."""
        return self.layout.width - self.extend

    def blend(self, latents):
        """Cross-fade the first ``extend`` columns with the extension and copy the result into both."""
        import torch

        lay = self.layout
        g = lay.grid(latents).clone()
        axis = 2 if lay.packed else 3
        e = self.extend // lay.unit
        c = self.core // lay.unit
        w = (torch.arange(e, dtype=torch.float32) + 0.5) / e  # 0 -> extension copy, 1 -> original
        shape = [1] * g.ndim
        shape[axis] = e
        w = w.reshape(shape).to(g.device, g.dtype)
        head = g.narrow(axis, 0, e)
        tail = g.narrow(axis, c, e)
        mixed = tail * (1 - w) + head * w
        g.narrow(axis, 0, e).copy_(mixed)
        g.narrow(axis, c, e).copy_(mixed)
        return lay.flat(g, latents)

    def init_noise(self, noise):
        """Noise whose extension columns repeat its first columns. Grid layout as :meth:`blend`."""
        lay = self.layout
        g = lay.grid(noise).clone()
        axis = 2 if lay.packed else 3
        e = self.extend // lay.unit
        c = self.core // lay.unit
        g.narrow(axis, c, e).copy_(g.narrow(axis, 0, e))
        return lay.flat(g, noise)

    def crop(self, latents):
        """The core columns of an unpacked latent [B, C, h, w_ext] -> [B, C, h, w_core]."""
        return latents[..., : self.core]

    def __call__(self, pipe, step: int, timestep, kwargs: dict) -> dict:
        kwargs["latents"] = self.blend(kwargs["latents"])
        if self.on_step:
            self.on_step(step)
        return kwargs


def seam_continuity(image: np.ndarray) -> dict[str, float]:
    """How continuous a panorama is across its ±180° seam, compared with its interior.

    Args:
        image: [H, W, C] or [H, W] values (any scale).

    Returns:
        ``seam_l1``: mean |col W-1 - col 0|; ``adjacent_l1``: median over interior neighbour pairs
        of the same; ``seam_corr``: correlation of the two seam columns (means removed, over rows and
        channels); ``adjacent_corr``: median of the same over interior neighbour pairs. A seamless
        panorama has seam figures like the interior's: zero padding, for instance, greys both edges,
        which keeps ``seam_l1`` small but leaves ``seam_corr`` near 0.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    check_shape(img, ["H", "W", "C"], "panorama")
    cols = np.moveaxis(img, 1, 0).reshape(img.shape[1], -1)  # [W, H*C]
    nxt = np.roll(cols, -1, axis=0)  # pair i = (col i, col i+1); the last pair is the seam
    l1 = np.abs(cols - nxt).mean(axis=1)
    a = cols - cols.mean(axis=1, keepdims=True)
    b = nxt - nxt.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    corr = np.where(den > 0, (a * b).sum(axis=1) / np.maximum(den, 1e-300), 0.0)  # flat columns: no evidence
    return {
        "seam_l1": float(l1[-1]),
        "adjacent_l1": float(np.median(l1[:-1])),
        "seam_corr": float(corr[-1]),
        "adjacent_corr": float(np.median(corr[:-1])),
    }
