"""worldgen: a text prompt, a photo or a 360° panorama in; an engine-ready 3D world out."""

from .errors import (
    BackendUnavailableError,
    InputError,
    MissingDependencyError,
    OutputError,
    ShapeError,
    WorldgenError,
)
from .types import (
    SEMANTIC_CLASSES,
    SH_C0,
    Camera,
    DepthMap,
    GaussianCloud,
    Mesh,
    MeshScene,
    Panorama,
    SemanticLayers,
)

__version__ = "0.1.0"

from .pipeline import RunOptions, load_artifact, run_pipeline  # noqa: E402  (needs __version__)
from .registry import Request  # noqa: E402

__all__ = [
    "SEMANTIC_CLASSES",
    "SH_C0",
    "BackendUnavailableError",
    "Camera",
    "DepthMap",
    "GaussianCloud",
    "InputError",
    "Mesh",
    "MeshScene",
    "MissingDependencyError",
    "OutputError",
    "Panorama",
    "Request",
    "RunOptions",
    "SemanticLayers",
    "ShapeError",
    "WorldgenError",
    "__version__",
    "load_artifact",
    "run_pipeline",
]
