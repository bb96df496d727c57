"""The stale CUDA graph pools' release (stasis_engine.vllm._gpu_trim), its choice of graphs, with a stand-in for
torch's CUDA calls; on a GPU it runs in every vLLM capture (the gpu-trim phase)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from stasis_engine.vllm import _gpu_trim

MB = 1 << 20


class FakeGraph:
    def __init__(self, pool: tuple[int, int] | None) -> None:
        self._pool = pool
        self.was_reset = False

    def pool(self) -> tuple[int, int]:
        if self._pool is None or self.was_reset:
            raise RuntimeError("no capture")
        return self._pool

    def reset(self) -> None:
        self.was_reset = True


class FakeCuda:
    """Device memory: 1000 MB used, of which a pool's reserved bytes go once its last graph is reset."""

    def __init__(self, segments: list[dict[str, Any]]) -> None:
        self.segments = segments
        self.graphs: list[FakeGraph] = []
        self.used = 1000 * MB
        self.CUDAGraph = FakeGraph

    def synchronize(self) -> None:
        pass

    def mem_get_info(self) -> tuple[int, int]:
        return (80_000 * MB - self.used, 80_000 * MB)

    def memory_snapshot(self) -> list[dict[str, Any]]:
        return self.segments

    def empty_cache(self) -> None:
        for seg in list(self.segments):
            pool = seg["segment_pool_id"]
            users = [g for g in self.graphs if g._pool == pool and not g.was_reset]
            if pool != (0, 0) and not users and seg["allocated_size"] == 0:
                self.used -= seg["total_size"]
                self.segments.remove(seg)


def test_resets_only_graphs_of_pools_with_nothing_allocated_outside_the_global_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cuda = FakeCuda(
        [
            {"segment_pool_id": (0, 1), "total_size": 788 * MB, "allocated_size": 0},  # profiling leftovers
            {"segment_pool_id": (0, 2), "total_size": 532 * MB, "allocated_size": 33 * MB},  # vLLM's graphs
            {"segment_pool_id": (0, 3), "total_size": 64 * MB, "allocated_size": 8 * MB},  # another, in use
            {"segment_pool_id": (0, 0), "total_size": 161 * MB, "allocated_size": 138 * MB},
        ]
    )
    stale = [FakeGraph((0, 1)) for _ in range(3)]
    live = [FakeGraph((0, 2)), FakeGraph((0, 2)), FakeGraph((0, 3)), FakeGraph(None)]
    cuda.graphs = stale + live
    holder = {"kept": stale}  # what keeps the stale graphs alive in vLLM: shows up among the holders
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(_gpu_trim, "_global_pool", lambda: (0, 2))

    out = _gpu_trim.release_stale_graph_pools()

    assert [g.was_reset for g in stale] == [True, True, True]
    assert [g.was_reset for g in live] == [False, False, False, False]
    assert out["graphs_reset"] == 3
    assert out["pools_released"] == [[0, 1]]
    assert out["freed"] == 788 * MB
    assert out["device_used_after"] == 212 * MB
    assert out["holders"].get("list", 0) >= 3
    assert holder["kept"] is stale


def test_the_global_pool_is_kept_even_with_nothing_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda([{"segment_pool_id": (0, 5), "total_size": 100 * MB, "allocated_size": 0}])
    graphs = [FakeGraph((0, 5))]
    cuda.graphs = graphs
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(_gpu_trim, "_global_pool", lambda: (0, 5))
    out = _gpu_trim.release_stale_graph_pools()
    assert graphs[0].was_reset is False
    assert out["freed"] == 0 and out["graphs_reset"] == 0


def test_graphs_the_collector_does_not_track_are_found_through_what_refers_to_them() -> None:
    import gc

    target = bytes(bytearray(b"stands for a graph torch does not let the collector track"))
    assert not gc.is_tracked(target)
    holder = {"entry": [target]}
    found = _gpu_trim._all_graphs(bytes)
    assert any(g is holder["entry"][0] for g in found)


def test_a_mempool_id_is_read_from_its_id() -> None:
    assert _gpu_trim._as_pool(types.SimpleNamespace(id=(7, 0))) == (7, 0)
    assert _gpu_trim._as_pool((0, 3)) == (0, 3)
    assert _gpu_trim._as_pool(None) is None
    assert _gpu_trim._as_pool("x") is None
