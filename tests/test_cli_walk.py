"""`worldgen generate --walk-radius`: sets the hidden-surface completion of the mesh and the splats."""

import json

import numpy as np
import pytest

from worldgen.cli.main import main
from worldgen.io import encode_png

# generate's previews at small sizes: no test here reads them (conftest.small_previews)
pytestmark = pytest.mark.usefixtures("small_previews")


def test_walk_radius_reaches_the_mesh_stage(tmp_path, capsys):
    # A 64x32 panorama: a box at 1 m in front of walls at 4 m.
    rng = np.random.default_rng(0)
    (tmp_path / "pano.png").write_bytes(encode_png(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)))
    d = np.full((32, 64), 4.0, np.float32)
    d[12:22, 20:34] = 1.0
    np.save(tmp_path / "depth.npy", d)
    runs = {}
    for radius in ("0", "1.5"):
        out = tmp_path / f"out{radius}"
        args = ["generate", "--panorama", str(tmp_path / "pano.png"), "--depth", str(tmp_path / "depth.npy")]
        assert main([*args, "-o", str(out), "--until", "mesh", "--preset", "fast", "--walk-radius", radius]) == 0
        runs[radius] = json.loads((out / "manifest.json").read_text())
    capsys.readouterr()

    def mesh_report(m):
        return next(v for k, v in m["stages"].items() if k == "mesh")["report"]

    assert "layers" not in mesh_report(runs["0"])
    layers = mesh_report(runs["1.5"])["layers"]
    assert layers["walk_radius_m"] == 1.5 and layers["hidden_pixels"] > 0
