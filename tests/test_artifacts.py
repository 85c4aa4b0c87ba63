"""Artifacts hold no run-dependent values: equal inputs give equal bytes, whatever the timings."""

from __future__ import annotations

from worldgen.artifacts import decode_artifact, encode_artifact, without_run_values
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


def test_nested_timings_are_dropped_too():
    report = {
        "faces": 10,
        "seconds": {"grid": 0.1},
        "layers": {"hidden": 3, "seconds_total": 0.2, "steps": [{"seconds": 1}]},
    }
    assert without_run_values(report) == {"faces": 10, "layers": {"hidden": 3, "steps": [{}]}}
