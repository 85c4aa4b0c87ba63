"""Generative panoramas with diffusers: text -> 360° and photo -> 360°, seamless and memory-aware.

Modules: ``seam`` (circular convolutions, latent wrap-blend, seam measurement), ``poles`` (polar
caps resampled through a tangent plane), ``memory`` (what fits where), ``diffusion`` (loading a
pipeline folder and running it seamlessly), ``backend`` (the ``diffusers`` and ``outpaint`` panorama
backends), ``tiny`` (random-weight pipelines built offline, for tests and benchmarks).
Importing this package does not import torch or diffusers.
"""
