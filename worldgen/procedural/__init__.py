"""Procedural world synthesizer: prompt -> SceneSpec -> 3D scene -> panorama, depth, semantics.

Public API:
    parse_prompt(prompt, seed) -> (SceneSpec, explanation lines); explain(prompt, seed) -> str;
    load_spec(path) -> SceneSpec; build_scene(spec, eye_height) -> Scene;
    render_panorama(scene, height) and render_view(scene, camera) -> (rgb, depth, ids);
    scene_to_mesh(scene) -> MeshScene (ground-truth geometry); synthesize(spec, eye_height, config).
The ``procedural`` panorama backend is registered by worldgen.procedural.backend.
"""

from .backend import ProceduralConfig, synthesize
from .render import render_panorama, render_view
from .scene import Scene, build_scene, scene_to_mesh
from .spec import SETTINGS, SceneSpec, explain, load_spec, parse_prompt, spec_to_bytes

__all__ = [
    "SETTINGS",
    "ProceduralConfig",
    "Scene",
    "SceneSpec",
    "build_scene",
    "explain",
    "load_spec",
    "parse_prompt",
    "render_panorama",
    "render_view",
    "scene_to_mesh",
    "spec_to_bytes",
    "synthesize",
]
