"""Test backends for the batch tests, imported by the test process and by every batch worker.

All are panorama backends (run with ``until: panorama``) that make a small seeded panorama and
misbehave on request: load a "model" through the model cache, crash, sleep, fail once, run out
of memory.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from worldgen.modelcache import cached_model
from worldgen.registry import Backend, StageResult, register_backend
from worldgen.types import Panorama


def _pano(seed: int) -> Panorama:
    rng = np.random.default_rng(seed)
    return Panorama(rng.random((16, 32, 3), dtype=np.float32))


@dataclass(frozen=True)
class ModelConfig:
    load_seconds: float = 0.2


def _model(ctx):
    def load():
        time.sleep(ctx.config.load_seconds)  # stands in for reading weights
        return {"pid": os.getpid()}

    model = cached_model(("test-model", "v1"), load)
    return StageResult(artifacts={"panorama": _pano(ctx.seed)}, report={"model_pid": model["pid"]})


def _crash(ctx):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does


@dataclass(frozen=True)
class SleepConfig:
    seconds: float = 1.0


def _sleep(ctx):
    for i in range(100):
        ctx.progress(i / 100, "sleeping")
        time.sleep(ctx.config.seconds / 100)
    return StageResult(artifacts={"panorama": _pano(ctx.seed)})


@dataclass(frozen=True)
class FlakyConfig:
    marker: str = ""


def _flaky(ctx):
    marker = Path(ctx.config.marker)
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("transient failure")
    return StageResult(artifacts={"panorama": _pano(ctx.seed)})


def _memory(ctx):
    raise MemoryError


@dataclass(frozen=True)
class SlowDepthConfig:
    seconds: float = 4.0


def _slow_depth(ctx):
    """The real 'given' depth backend, after a pause: a run can be stopped while depth is in flight."""
    from worldgen.registry import get_backend

    time.sleep(ctx.config.seconds)
    given = get_backend("depth", "given")
    return given.run(replace(ctx, config=given.make_config(ctx.request.preset)))


BACKENDS = (
    Backend("panorama", "test_model", _model, "test: loads a model via the cache", ModelConfig),
    Backend("panorama", "test_crash", _crash, "test: the process dies"),
    Backend("panorama", "test_sleep", _sleep, "test: sleeps", SleepConfig),
    Backend("panorama", "test_flaky", _flaky, "test: fails the first time", FlakyConfig),
    Backend("panorama", "test_memory", _memory, "test: runs out of memory"),
    Backend("depth", "test_slow", _slow_depth, "test: given depth, slowly", SlowDepthConfig),
)


def register() -> None:
    for b in BACKENDS:
        register_backend(b)


def unregister() -> None:
    """Take the test backends out of this process's registry again (other tests see the real set)."""
    from worldgen import registry

    for b in BACKENDS:
        registry._REGISTRY[b.stage].pop(b.name, None)


register()  # a worker process (python -m worldgen.batch.worker --import _batch_plugin) needs them at import
