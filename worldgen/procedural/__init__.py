"""Procedural world synthesizer: prompt -> SceneSpec -> 3D scene -> panorama, depth, semantics."""
