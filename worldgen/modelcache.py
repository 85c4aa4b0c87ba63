"""A process-wide cache of loaded models, so a long-lived process loads each model once.

A batch worker runs many jobs in one process (local workers and Ray workers alike); a model
backend that loads its weights through :func:`cached_model` pays the load (seconds to minutes for
a diffusion pipeline) on the worker's first job only::

    pipe = cached_model(("panorama", str(path), dtype, device), lambda: load_pipeline(path, dtype, device))

The key must name everything the loaded object depends on (folder, fingerprint or revision,
dtype, device). The cache keeps the :data:`capacity` most recently used models and drops the
oldest beyond that (models are large; a worker seldom alternates between more than a few).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

capacity = max(1, int(os.environ.get("WORLDGEN_MODEL_CACHE", "2") or 2))
"""Most models kept loaded at once (environment: WORLDGEN_MODEL_CACHE)."""

_models: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()
_stats = {"loads": 0, "hits": 0}


def cached_model(key: Hashable, load: Callable[[], T]) -> T:
    """The model cached under ``key``, loaded with ``load()`` the first time it is asked for."""
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            _stats["hits"] += 1
            return _models[key]
    model = load()  # outside the lock: loading takes long and may itself use the cache
    with _lock:
        _stats["loads"] += 1
        _models[key] = model
        _models.move_to_end(key)
        while len(_models) > capacity:
            _models.popitem(last=False)
    return model


def model_cache_stats() -> dict[str, int]:
    """Loads and hits since the process started, and the number of models held now."""
    with _lock:
        return {**_stats, "held": len(_models)}


def clear_models() -> None:
    """Drop every cached model (their memory is freed when nothing else refers to them)."""
    with _lock:
        _models.clear()
