"""Splats for the surfaces hidden behind depth edges, so a viewer who steps aside sees no holes.

A panorama shows only the first surface along each ray. When the viewer moves, the background
next to every foreground edge (behind a chair, a post, a house corner) comes into view, and a
cloud built from the panorama has nothing there: the render shows the empty background. The
sheet mesh fills such strips by stretching the far side behind the cut; :func:`backfill_gaussians`
does the same for splats: the far side of every depth edge is carried, pixel by pixel, in under
the nearer surface for a band of ``band_deg`` degrees, and a splat is placed there at the far
side's distance with the far side's colour (the sky included, on the sky dome). From the
capture point these splats sit behind opaque foreground and change nothing; from 0.5-1 m away
they cover the disocclusions with plausible background instead of a hole.

Measured on the procedural room (1024x512, refined splats, 4 views of 256 px): holes 1.8 % ->
0.01 % of the pixels and PSNR 30.2 -> 33.9 dB at 0.5 m; 2.4 % -> 0.2 % and 29.7 -> 32.9 dB at
1 m, for 34k extra splats (6 %) built in ~1 s (docs/splats.md).
"""

from __future__ import annotations

import numpy as np

from .._check import check_rgbd
from ..errors import InputError
from ..geometry.equirect import equirect_directions
from ..types import DepthMap, GaussianCloud, Panorama
from .init import InitConfig, _splats, _srgb, _to_cloud, pixel_footprints, sky_radius


def backfill_gaussians(
    panorama: Panorama,
    depth: DepthMap,
    band_deg: float = 8.0,
    *,
    step: int = 1,
    config: InitConfig = InitConfig(),
    edge_ratio: float = 1.1,
) -> GaussianCloud:
    """Splats continuing the far side of every depth edge behind the nearer surface.

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres (+inf = sky).
        band_deg: how far behind an edge the background is continued, degrees of view angle
            (8° covers the parallax of a surface 1.5 m away against one 4 m away for a viewer
            0.5 m to the side). 0 = none.
        step: work on every ``step``-th pixel (a cloud merged to fewer splats than pixels gets
            backfill splats of its own size: ``step`` = panorama width / the cloud's equivalent width).
        config: footprint, thickness, opacity and SH degree of the new splats (as init_gaussians).
        edge_ratio: a pixel is behind an edge when the carried background is this many times
            farther than its own surface. Default 1.1 (the bridging-edge definition in docs/geometry.md).

    Returns:
        GaussianCloud of the new splats only (possibly empty), facing the capture point.
    """
    check_rgbd(panorama, depth)
    if band_deg < 0 or step < 1 or edge_ratio <= 1:
        raise InputError("backfill needs band_deg >= 0, step >= 1 and edge_ratio > 1")
    colour = _srgb(panorama)
    valid, sky = depth.valid, depth.sky
    d = np.where(valid, depth.depth, np.where(sky, sky_radius(depth, config), 0.0)).astype(np.float32)
    known = valid | (sky if config.sky == "dome" else False)
    if step > 1:
        d, known, colour = (
            d[step // 2 :: step, step // 2 :: step],
            known[step // 2 :: step, step // 2 :: step],
            colour[step // 2 :: step, step // 2 :: step],
        )
    H, W = d.shape
    band = int(round(band_deg / 360.0 * W))
    bg_d, bg_c = d.copy(), colour.astype(np.float32, copy=True)
    for _ in range(band):
        # One pixel further per pass: each pixel takes the farthest background among itself and
        # its 4 neighbours (longitude wraps, rows clamp at the poles) where that is behind its surface.
        best_d, best_c = bg_d, bg_c
        for nd, nc in (
            (np.roll(bg_d, 1, 1), np.roll(bg_c, 1, 1)),
            (np.roll(bg_d, -1, 1), np.roll(bg_c, -1, 1)),
            (np.concatenate([bg_d[:1], bg_d[:-1]]), np.concatenate([bg_c[:1], bg_c[:-1]])),
            (np.concatenate([bg_d[1:], bg_d[-1:]]), np.concatenate([bg_c[1:], bg_c[-1:]])),
        ):
            take = nd > best_d
            best_d = np.where(take, nd, best_d)
            best_c = np.where(take[..., None], nc, best_c)
        upd = known & (best_d > edge_ratio * d)
        bg_d = np.where(upd, best_d, bg_d)
        bg_c = np.where(upd[..., None], best_c, bg_c)
    new = known & (bg_d > edge_ratio * d)
    across, down = pixel_footprints(H, W)
    r = equirect_directions(H)[new]
    return _to_cloud(*_splats(r, bg_d[new], -r, bg_c[new], across[new], down[new], config), config.sh_degree)


def layer_gaussians(
    panorama: Panorama,
    depth: DepthMap,
    walk_radius: float = 2.0,
    *,
    step: int = 1,
    config: InitConfig = InitConfig(),
    inpaint: str = "auto",
    seed: int = 0,
    layer=None,
    fill: dict | None = None,
) -> GaussianCloud:
    """Splats on the completed hidden background (:mod:`worldgen.layers`), replacing the smear.

    Where :func:`backfill_gaussians` carries the edge's far-side colour and distance in a band of
    fixed angle, this places one splat per hidden pixel of the layered panorama: on the
    background's continued plane (a floor stays a floor behind a sofa), out to what a viewer
    ``walk_radius`` metres from the capture point sees, with the inpainted colour (textures and
    edges continued, not smeared); hidden sky goes onto the sky dome. From the capture point they
    sit behind the foreground (the colour solve leaves them be: no pixel supervises them).

    Args:
        panorama: colour, H x 2H.
        depth: Euclidean ray distance, metres (+inf = sky).
        walk_radius: metres (0 = none).
        step: pixel step of the splats (a cloud merged to fewer splats than pixels gets layer
            splats of its own size): the layer's working grid is W / step columns.
        config: footprint, thickness, opacity, sky and SH degree of the new splats (as init_gaussians).
        inpaint: registered inpainter of the hidden colour.
        seed: inpainting seed.
        layer: a :class:`worldgen.layers.HiddenLayer` already built for this panorama (its grid
            sets the splat size), or None to build one.
        fill: the diffusion inpainter's LayerConfig fields (``fill_model``, ``fill_prompt``,
            ``fill_steps``), or None.

    Returns:
        GaussianCloud of the new splats only (possibly empty), facing the capture point.
    """
    from ..layers import LayerConfig, build_layers

    check_rgbd(panorama, depth)
    if walk_radius < 0 or step < 1:
        raise InputError("layer splats need walk_radius >= 0 and step >= 1")
    if layer is None:
        cfg = LayerConfig(
            walk_radius=walk_radius, work_width=max(8, depth.shape[1] // step), inpaint=inpaint, **(fill or {})
        )
        layer = build_layers(panorama, depth, cfg, seed=seed)
    h, w = layer.shape
    keep = layer.surface | (layer.sky & (config.sky == "dome"))
    d = np.where(layer.sky, sky_radius(depth, config), layer.depth)
    across, down = pixel_footprints(h, w)
    r = equirect_directions(h)[keep]
    return _to_cloud(
        *_splats(r, d[keep].astype(np.float32), -r, layer.colour[keep], across[keep], down[keep], config),
        config.sh_degree,
    )


__all__ = ["backfill_gaussians", "layer_gaussians"]
