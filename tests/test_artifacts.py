"""Artifacts hold no run-dependent values: equal inputs give equal bytes, whatever the timings."""

from __future__ import annotations

from worldgen.artifacts import decode_artifact, encode_artifact
from worldgen.evaluation.geometry import analytic_scene
from worldgen.mesh.sheet import SheetConfig, build_sheet


def test_mesh_artifact_has_no_timings():
    pano, depth, _, _ = analytic_scene("room", 32)
    cfg = SheetConfig(max_triangles=500, collision_triangles=100)
    a, b = build_sheet(pano, depth, cfg), build_sheet(pano, depth, cfg)
    assert "seconds" in a.report  # the manifest's stage entry keeps them...
    data = encode_artifact("mesh", a)
    assert data == encode_artifact("mesh", b)  # ...the content-addressed file does not
    assert "seconds" not in decode_artifact("mesh", data).report
