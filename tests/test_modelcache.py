"""The process-wide model cache: one load per key, least recently used dropped first."""

from __future__ import annotations

import worldgen.modelcache as mc


def test_second_use_does_not_load_again(monkeypatch):
    monkeypatch.setattr(mc, "capacity", 2)
    mc.clear_models()
    loads = []
    before = mc.model_cache_stats()

    def loader(tag):
        return lambda: loads.append(tag) or {"model": tag}

    a1 = mc.cached_model("a", loader("a"))
    a2 = mc.cached_model("a", loader("a"))
    assert a1 is a2 and loads == ["a"]
    mc.cached_model("b", loader("b"))
    mc.cached_model("c", loader("c"))  # over capacity: "a" (least recently used) goes
    mc.cached_model("a", loader("a"))
    assert loads == ["a", "b", "c", "a"]
    after = mc.model_cache_stats()
    assert after["loads"] - before["loads"] == 4 and after["hits"] - before["hits"] == 1
    assert after["held"] == 2
    mc.clear_models()
    assert mc.model_cache_stats()["held"] == 0
