"""Depth stage machinery: views covering the sphere, global alignment and merge, sky, the weight-free
prior and the model backends: everything of the depth stage.

Modules:
    views: perspective views that cover the sphere and the mapping to and from the equirect.
    align: per-view scale/shift solved from all overlaps at once, ground-plane metric scale, merge.
    sky: sky detection and the indoor/outdoor decision.
    prior: the ``prior`` backend (no weights): ground plane, pop-up folds, room box, sky at infinity.
    model: the ``transformers`` backend (any transformers depth-estimation model).
    given: the ``given`` backend (depth delivered with the panorama).
    layout: the ``layout`` backend (ground plane and far sphere; the former default).
"""
