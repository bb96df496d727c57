"""vLLM's CUDA graphs' memory kept in its sleep-mode pool, and the worker's GPU memory by owner.

A sleeping vLLM keeps its CUDA graphs' memory pool on the GPU (0.8 GiB for the 3B shape), so the CUDA checkpoint
copies it out and the restore copies it back, though what it holds is scratch: each replay writes the activations
it later reads. With ``STASIS_VLLM_GRAPHS=sleep`` in the server's environment, vLLM's global graph pool is made a
``MemPool`` of its own sleep-mode allocator (``CuMemAllocator``), so a level-2 sleep releases it with the KV cache
(its allocations carry the allocator's default tag, which vLLM itself never uses) and a wake maps fresh memory at
the same addresses before the next replay. Why: docs/decisions/ (the graph-pool record).

The hook must be in place before the model is loaded (the graph wrappers ask for the pool then); vLLM imports the
worker extension while it builds the worker, which is early enough, so ``install_from_env`` runs at that import.
It does nothing outside a process that has imported vLLM already.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ENV = "STASIS_VLLM_GRAPHS"
# The tag the sleep-mode allocator gives allocations made outside ``use_memory_pool``: only the graph pool's here.
GRAPHS_TAG = "default"
_POOL_KEY = "stasis-graphs"


def install_from_env() -> bool:
    """Puts the graph pool in the sleep pool when ``STASIS_VLLM_GRAPHS=sleep`` and vLLM is loaded; whether it did."""
    mode = os.environ.get(ENV, "").strip().lower()
    if mode in ("", "gpu", "0", "off"):
        return False
    if mode != "sleep":
        raise ValueError(f"{ENV}={mode!r}: expected 'sleep' or 'gpu'")
    if "vllm" not in sys.modules:
        return False
    install()
    return True


def install() -> None:
    """Makes the platform's global CUDA graph pool a MemPool of vLLM's sleep-mode allocator (created lazily, on the
    first request, by then on the worker's device)."""
    from vllm.platforms import current_platform

    cls = type(current_platform)
    if getattr(cls, "_stasis_graphs", False):
        return

    def get_global_graph_pool(self: Any) -> Any:
        owner = type(self)
        if owner._global_graph_pool is None:
            owner._global_graph_pool = _sleep_pool_id()
        return owner._global_graph_pool

    cls.get_global_graph_pool = get_global_graph_pool
    cls._stasis_graphs = True


def installed() -> bool:
    """Whether this process's graph pool is in the sleep pool (``install`` ran)."""
    if "vllm.platforms" not in sys.modules:
        return False
    from vllm.platforms import current_platform

    return bool(getattr(type(current_platform), "_stasis_graphs", False))


def _sleep_pool_id() -> Any:
    import torch
    from vllm.device_allocator.cumem import CuMemAllocator, get_pluggable_allocator

    allocator = CuMemAllocator.get_instance()
    pluggable = get_pluggable_allocator(allocator.python_malloc_callback, allocator.python_free_callback)
    pool = torch.cuda.MemPool(pluggable._allocator)
    # Kept alive with the allocator's own pools (vLLM holds them the same way, for the same torch reasons).
    allocator.allocator_and_pools[_POOL_KEY] = (pool, pluggable)
    return pool.id


def gpu_memory(pointer_to_data: dict[int, Any]) -> dict[str, Any]:
    """The worker's GPU memory by owner: the device's used bytes, torch's caching allocator (reserved, allocated,
    by pool), vLLM's sleep-mode pool by tag (mapped and asleep), and the rest (CUDA context, libraries)."""
    import torch

    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    tags: dict[str, dict[str, int]] = {}
    sleep_pool: set[int] = set()
    for ptr, data in pointer_to_data.items():
        entry = tags.setdefault(str(getattr(data, "tag", "?")), {"mapped": 0, "asleep": 0, "count": 0})
        size = int(data.handle[1])
        entry["asleep" if getattr(data, "is_asleep", False) else "mapped"] += size
        entry["count"] += 1
        sleep_pool.add(int(ptr))
    pools: dict[str, dict[str, int]] = {}
    for seg in torch.cuda.memory_snapshot():
        key = "sleep-pool" if int(seg["address"]) in sleep_pool else f"pool{tuple(seg.get('segment_pool_id', (0, 0)))}"
        entry = pools.setdefault(key, {"segments": 0, "total": 0, "allocated": 0})
        entry["segments"] += 1
        entry["total"] += int(seg["total_size"])
        entry["allocated"] += int(seg["allocated_size"])
    reserved = int(torch.cuda.memory_reserved())
    mapped_sleep = sum(t["mapped"] for t in tags.values())
    used = int(total - free)
    return {
        "device_used": used,
        "torch_reserved": reserved,
        "torch_allocated": int(torch.cuda.memory_allocated()),
        "sleep_pool_tags": tags,
        "torch_pools": pools,
        "outside_torch": used - reserved - max(0, mapped_sleep - _sleep_in_torch(pools)),
    }


def _sleep_in_torch(pools: dict[str, dict[str, int]]) -> int:
    return pools.get("sleep-pool", {}).get("total", 0)
