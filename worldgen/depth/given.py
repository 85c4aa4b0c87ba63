"""The ``given`` depth backend: passes through depth delivered with the panorama (a user's
``--depth`` file, or the procedural synthesizer's exact depth). The pipeline chooses it whenever such
depth exists.
"""

from __future__ import annotations

from .._check import check_rgbd
from ..errors import InputError
from ..registry import Backend, StageContext, StageResult, register_backend
from .report import depth_report


def _run_given(ctx: StageContext) -> StageResult:
    depth = ctx.inputs.get("given_depth")
    if depth is None:
        raise InputError("the 'given' depth backend needs depth delivered with the panorama (--depth FILE)")
    pano = ctx.inputs["panorama"]
    check_rgbd(pano, depth)
    return StageResult(artifacts={"depth": depth}, report=depth_report(depth))


register_backend(
    Backend(
        stage="depth",
        name="given",
        run=_run_given,
        summary="pass through depth delivered with the panorama (--depth file or the synthesizer's exact depth)",
    )
)
