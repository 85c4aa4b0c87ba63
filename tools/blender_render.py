"""Import a GLB or USDZ into Blender (the ``bpy`` module) headless and render it from the capture point.

Run with the Blender venv's Python (``make blender`` builds ``.venv-blender``; bpy pins its own
numpy, so it lives apart from worldgen's venv):

    .venv-blender/bin/python tools/blender_render.py IN.glb|IN.usdz OUT.png --look 0,0,-1 \
        [--eye 0,0,0] [--width 256] [--height 128] [--fov-y 60] [--clip-end METRES] [--engine cycles]
        [--environment sky.hdr --environment-z-deg -90]      (IN may be "-": the World alone)

Directions and points are in glTF/worldgen coordinates (+Y up, -Z forward); Blender's importers
turn +Y up into +Z up, and so does this script for the camera. The camera is the factory startup
scene's camera with its default settings (clip 0.1 to 100 m in Blender 5.0; a camera added later
clips at 1,000 m), untouched unless --clip-end is given; only its pose and field of view are set. The render
uses the Standard view transform, so texture colours come out as stored. It prints one JSON line:
the objects Blender would render, the camera's clip range and the render engine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def _vec(s: str) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in s.split(","))
    return x, y, z


def _to_blender(p):
    x, y, z = p
    return x, -z, y  # glTF +Y up -> Blender +Z up (what both importers do)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--eye", type=_vec, default=(0.0, 0.0, 0.0))
    ap.add_argument("--look", type=_vec, default=(0.0, 0.0, -1.0))
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--fov-y", type=float, default=60.0)
    ap.add_argument("--clip-end", type=float, default=None)
    ap.add_argument("--engine", default="CYCLES")
    ap.add_argument("--environment", default=None, help="latlong image for the World (e.g. sky.hdr)")
    ap.add_argument("--environment-z-deg", type=float, default=0.0, help="Mapping node Z rotation")
    a = ap.parse_args(argv)

    import bpy
    from mathutils import Vector

    # The factory startup scene, as a new user gets it: keep its camera (clip 0.1..100 m), drop
    # the cube and the light.
    bpy.ops.wm.read_factory_settings()
    for obj in list(bpy.data.objects):
        if obj.type != "CAMERA":
            bpy.data.objects.remove(obj)
    if a.input == "-":
        pass  # nothing to import: render the World (environment) alone
    elif a.input.lower().endswith((".glb", ".gltf")):
        bpy.ops.import_scene.gltf(filepath=a.input)
    else:
        bpy.ops.wm.usd_import(filepath=a.input)
    scene = bpy.context.scene
    if a.environment:
        # World -> Environment Texture (equirect) through a Mapping node, as docs/engines.md says.
        world = scene.world or bpy.data.worlds.new("World")
        scene.world = world
        world.use_nodes = True
        nodes, links = world.node_tree.nodes, world.node_tree.links
        nodes.clear()
        coord = nodes.new("ShaderNodeTexCoord")
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value[2] = math.radians(a.environment_z_deg)
        env = nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(a.environment)
        bg = nodes.new("ShaderNodeBackground")
        out = nodes.new("ShaderNodeOutputWorld")
        links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        links.new(env.outputs["Color"], bg.inputs["Color"])
        links.new(bg.outputs["Background"], out.inputs["Surface"])
    cam = bpy.data.objects["Camera"]
    cam_data = cam.data
    if a.clip_end is not None:
        cam_data.clip_end = a.clip_end
    cam_data.sensor_fit = "VERTICAL"
    cam_data.angle_y = math.radians(a.fov_y)
    cam.location = _to_blender(a.eye)
    forward = Vector(_to_blender(a.look)) - Vector(_to_blender(a.eye))
    cam.rotation_euler = forward.to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y = a.width, a.height
    scene.render.resolution_percentage = 100
    scene.render.engine = a.engine.upper()
    if scene.render.engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = 8
        scene.cycles.use_denoising = False
        scene.cycles.max_bounces = 0
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.render.filepath = a.output
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    rendered = sorted(o.name for o in scene.objects if o.type == "MESH" and not o.hide_render and o.visible_get())
    print(
        json.dumps(
            {
                "rendered_objects": rendered,
                "clip": [cam_data.clip_start, cam_data.clip_end],
                "engine": scene.render.engine,
                "blender": bpy.app.version_string,
                "worlds": len(bpy.data.worlds),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]))
