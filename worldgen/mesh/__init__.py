"""Mesh extraction from RGB-D panoramas: sheet and TSDF extractors, simplification, collision."""
