"""Build a world from Python and read its artifacts back.

python examples/python_api.py "a village on green hills" out/village
"""

import sys

import worldgen

prompt = sys.argv[1] if len(sys.argv) > 1 else "a pine forest by a lake"
out = sys.argv[2] if len(sys.argv) > 2 else "out/python_api"

result = worldgen.run_pipeline(
    worldgen.Request(prompt=prompt, seed=1, preset="fast"),
    out,
    worldgen.RunOptions(until="depth"),
    progress=lambda stage, fraction, message: print(f"{stage:>9} {fraction:4.0%} {message}"),
)
for record in result.stages:
    print(record.stage, record.backend, record.status, f"{record.seconds:.2f} s")

pano = worldgen.load_artifact(out, "panorama")  # Panorama: [H, 2H, 3] float32 sRGB
depth = worldgen.load_artifact(out, "depth")  # DepthMap: Euclidean metres, +inf for sky
print(
    f"{pano.width}x{pano.height} panorama; median depth {float(depth.depth[depth.valid].mean()):.1f} m; "
    f"sky {depth.sky.mean():.0%}"
)
