"""Mesh extraction from RGB-D panoramas: sheet and TSDF extractors, simplification, collision.

Public API:
    build_sheet(panorama, depth, SheetConfig()) -> MeshScene   (the default ``sheet`` extractor)
    build_tsdf(panorama, depth, TSDFConfig()) -> MeshScene     (the ``tsdf`` extractor)
The ``mesh`` stage backends are registered by worldgen.mesh.backend.
"""

from .sheet import SheetConfig, build_sheet
from .tsdf import TSDFConfig, build_tsdf

__all__ = ["SheetConfig", "TSDFConfig", "build_sheet", "build_tsdf"]
