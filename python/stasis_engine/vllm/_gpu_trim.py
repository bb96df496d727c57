"""GPU memory a sleeping vLLM holds for nothing, freed before the CUDA checkpoint copies it.

vLLM 0.26 measures its CUDA graphs' memory at start-up by capturing throwaway graphs into a temporary private pool
(``GPUModelRunner.profile_cudagraph_memory``). The graphs are cleared from vLLM's wrappers, but the pool stays
reserved (0.79 GB for the Llama-3.2-3B shape on an H100, nothing allocated in it), and a private pool's segments are
only returned once no graph uses it, which ``torch.cuda.empty_cache()`` in vLLM's sleep cannot do. The CUDA
checkpoint then copies it out and every restore copies it back: ~45% of the sleeping server's GPU state.

``release_stale_graph_pools`` resets every ``torch.cuda.CUDAGraph`` still referred to whose private pool is not vLLM's
global graph pool and has nothing allocated in it, then empties torch's cache. Resetting a graph releases its pool;
it cannot corrupt memory (no live tensor is in such a pool), and a graph reset by mistake fails loudly when replayed
(torch refuses to replay a graph without a capture), which a restore's canary would show. Why and what it saved:
docs/decisions/0015-vllm-stale-graph-pools.md.
"""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any


def release_stale_graph_pools() -> dict[str, Any]:
    """Frees private graph pools nothing uses; answers what it found, reset and freed (bytes of device memory)."""
    import torch

    torch.cuda.synchronize()
    gc.collect()
    before = _device_used()
    allocated = _allocated_by_pool()
    keep = _global_pool()
    graphs = _all_graphs(torch.cuda.CUDAGraph)
    # Each graph's pool read once, before any reset (a reset graph has none), keyed by id so nothing holds the graphs.
    pool_of = {id(g): _pool_of(g) for g in graphs}
    by_pool = Counter(str(p) for p in pool_of.values())
    stale = [g for g in graphs if (p := pool_of[id(g)]) is not None and p != keep and allocated.get(p, 0) <= 0]
    pools = sorted({p for g in stale if (p := pool_of[id(g)]) is not None})
    # Who still held them: evidence for the decision record and for vLLM, gathered before the reset.
    holders = Counter(
        type(r).__name__ for g in stale for r in gc.get_referrers(g) if r is not graphs and r is not stale
    )
    reset = len(stale)
    for graph in stale:
        graph.reset()
    del stale, graphs
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    after = _device_used()
    return {
        "graphs": sum(by_pool.values()),
        "graphs_by_pool": dict(by_pool.most_common(6)),
        "graphs_reset": reset,
        "pools_released": [list(p) for p in pools],
        "holders": dict(holders.most_common(5)),
        "device_used_before": before,
        "device_used_after": after,
        "freed": before - after,
    }


def _all_graphs(kind: type) -> list[Any]:
    """Every live graph object: torch's are not tracked by the collector themselves (a first version looking only at
    ``gc.get_objects()`` found none on the H100), so they are found among what tracked objects refer to."""
    found: dict[int, Any] = {}
    for obj in gc.get_objects():
        if isinstance(obj, kind):
            found[id(obj)] = obj
            continue
        for ref in gc.get_referents(obj):
            if isinstance(ref, kind):
                found[id(ref)] = ref
    return list(found.values())


def _device_used() -> int:
    import torch

    free, total = torch.cuda.mem_get_info()
    return int(total - free)


def _allocated_by_pool() -> dict[tuple[int, int], int]:
    import torch

    out: dict[tuple[int, int], int] = {}
    for seg in torch.cuda.memory_snapshot():
        pool = _as_pool(seg.get("segment_pool_id", (0, 0))) or (0, 0)
        out[pool] = out.get(pool, 0) + int(seg["allocated_size"])
    return out


def _global_pool() -> tuple[int, int] | None:
    try:
        from vllm.platforms import current_platform

        pool = type(current_platform)._global_graph_pool
    except (ImportError, AttributeError):
        return None
    return _as_pool(pool)


def _pool_of(graph: Any) -> tuple[int, int] | None:
    try:
        return _as_pool(graph.pool())
    except RuntimeError:  # never captured, or reset already
        return None


def _as_pool(pool: Any) -> tuple[int, int] | None:
    if pool is None:
        return None
    pool = getattr(pool, "id", pool)  # a torch.cuda.MemPool carries its id
    try:
        a, b = pool
        return (int(a), int(b))
    except (TypeError, ValueError):
        return None
