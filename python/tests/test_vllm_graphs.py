"""The CUDA graphs' pool hook (stasis_engine.vllm._graphs): when it acts, and its refusals. The pool itself is
exercised on a GPU by gpu/vllm/device/graph_pool_probe.py."""

from __future__ import annotations

import sys
import types

import pytest

from stasis_engine.errors import StasisEngineError
from stasis_engine.vllm import _graphs


def test_on_by_default_off_with_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_graphs.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    installed: list[bool] = []
    monkeypatch.setattr(_graphs, "install", lambda: installed.append(True))
    assert _graphs.install_from_env() is True and installed == [True]
    monkeypatch.setenv(_graphs.ENV, "gpu")
    assert _graphs.install_from_env() is False and installed == [True]


def test_sleep_outside_a_vllm_process_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_graphs.ENV, "sleep")
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    assert _graphs.install_from_env() is False


def test_a_bad_value_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_graphs.ENV, "on")
    with pytest.raises(StasisEngineError, match=r"STASIS_VLLM_GRAPHS='on'.*gpu.*sleep"):
        _graphs.install_from_env()


def test_not_cuda_is_a_reason_to_keep_vllms_pool() -> None:
    platform = types.SimpleNamespace(is_cuda=lambda: False)
    assert _graphs._unsuitable(platform) == "not CUDA"
    assert _graphs.installed() is False


def test_waking_the_kv_cache_by_tag_wakes_the_graphs_memory_once(monkeypatch: pytest.MonkeyPatch) -> None:
    woken: list[list[str] | None] = []

    class Data:
        def __init__(self, tag: str) -> None:
            self.tag, self.is_asleep = tag, True

    class FakeAllocator:
        def __init__(self) -> None:
            self.pointer_to_data = {1: Data("kv_cache"), 2: Data(_graphs.GRAPHS_TAG)}

        def wake_up(self, tags: list[str] | None = None) -> None:
            woken.append(tags)
            for d in self.pointer_to_data.values():
                if tags is None or d.tag in tags:
                    d.is_asleep = False

    cumem = types.ModuleType("vllm.device_allocator.cumem")
    cumem.CuMemAllocator = FakeAllocator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm.device_allocator.cumem", cumem)
    _graphs._wake_graphs_with_kv_cache()
    allocator = FakeAllocator()
    allocator.wake_up(["weights"])
    allocator.wake_up(["kv_cache"])
    assert woken == [["weights"], ["kv_cache"], [_graphs.GRAPHS_TAG]]
    allocator.wake_up(["kv_cache"])  # the graphs' memory is awake already: not mapped twice
    assert woken[-1] == ["kv_cache"] and len(woken) == 4


def test_segments_the_sleep_allocator_released_are_not_counted_as_on_the_gpu() -> None:
    from stasis_engine.vllm._graphs import by_pool

    # A sleeping 3B as the H100 capture listed it: the weights' pool (0, 1) holds the tracked (asleep) allocations
    # and one 788,529,152-byte segment vLLM unmapped at the end of the load; torch's default pool is real memory.
    segments = [
        {"address": 0x1000, "segment_pool_id": (0, 1), "total_size": 7_010_779_136, "allocated_size": 7_010_779_136},
        {"address": 0x9000, "segment_pool_id": (0, 1), "total_size": 788_529_152, "allocated_size": 0},
        {"address": 0x5000, "segment_pool_id": (0, 0), "total_size": 104_857_600, "allocated_size": 101_415_424},
        {"address": 0x6000, "segment_pool_id": (0, 0), "total_size": 2_097_152, "allocated_size": 0},
    ]
    pools, sizes = by_pool(segments, sleep_addresses={0x1000}, sleep_pool_ids={(0, 1), (0, 2)})
    assert pools["sleep-pool"]["total"] == 7_010_779_136
    assert pools["released"] == {"segments": 1, "total": 788_529_152, "allocated": 0}
    assert pools["pool(0, 0)"] == {"segments": 2, "total": 106_954_752, "allocated": 101_415_424}
    assert sizes == {"released": [788_529_152], "pool(0, 0)": [104_857_600, 2_097_152]}
    # Without the allocator's pool ids (an older vLLM), the segment is listed under its pool id, as before.
    pools, _ = by_pool(segments, sleep_addresses={0x1000}, sleep_pool_ids=set())
    assert "released" not in pools and pools["pool(0, 1)"]["total"] == 788_529_152
