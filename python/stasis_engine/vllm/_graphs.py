"""vLLM's CUDA graphs' memory kept in its sleep-mode pool, and the worker's GPU memory by owner.

A sleeping vLLM keeps its CUDA graphs' memory pool on the GPU (0.53 GB for the 3B shape), so the CUDA checkpoint
copies it out and every restore copies it back, though what it holds is scratch: each replay writes the activations
it later reads. Here vLLM's global graph pool is made a ``MemPool`` of its own sleep-mode allocator
(``CuMemAllocator``): a level-2 sleep releases it with the KV cache (its allocations carry the allocator's default
tag, which vLLM itself never uses) and the restore maps fresh memory at the same addresses before the first replay
(``stasis_wake_tags``: vLLM's own ``/wake_up`` wakes only the tags it put to sleep). On by default where the server
runs with sleep mode on CUDA; ``STASIS_VLLM_GRAPHS=gpu`` leaves the pool to vLLM. Why and what it saves:
docs/decisions/0013-vllm-graph-pool.md. Whoever else wakes such a server must wake every tag (``POST /wake_up``
without tags) or the graphs replay into unmapped memory.

The hook must be in place before the model is loaded (the graph wrappers ask for the pool then); vLLM imports the
worker extension while it builds the worker, which is early enough, so ``install_from_env`` runs at that import.
It does nothing outside a process that has imported vLLM, and falls back to vLLM's own pool where the server runs
without sleep mode or off CUDA.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import config
from . import _context

ENV = "STASIS_VLLM_GRAPHS"
# The tag the sleep-mode allocator gives allocations made outside ``use_memory_pool``: only the graph pool's here.
GRAPHS_TAG = "default"
_POOL_KEY = "stasis-graphs"


def install_from_env() -> bool:
    """Puts the graph pool in the sleep pool unless ``STASIS_VLLM_GRAPHS=gpu``, where vLLM is loaded; whether it did.
    A stasis restore wakes it (the capture records the tag); anyone else waking this server's sleep must include
    the tag, or wake every tag at once (``POST /wake_up`` without tags)."""
    if config.get(ENV) != "sleep" or "vllm" not in sys.modules:
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

    original = cls.get_global_graph_pool

    def get_global_graph_pool(self: Any) -> Any:
        owner = type(self)
        if owner._global_graph_pool is None:
            reason = _unsuitable(self)
            if reason:
                _log(f"CUDA graphs stay in vLLM's own pool: {reason}")
            else:
                owner._global_graph_pool = _sleep_pool_id()
                _log("CUDA graphs' pool in the sleep-mode allocator: a level-2 sleep releases it")
        return original(self)

    cls.get_global_graph_pool = get_global_graph_pool
    cls._stasis_graphs = True
    _wake_graphs_with_kv_cache()
    # Said once per process, so a server's log shows the hook was in place before its graph wrappers asked for a pool.
    chosen = cls._global_graph_pool is not None
    _log(f"CUDA graphs' pool hook installed on {cls.__name__} (pool already chosen: {chosen})")


def _wake_graphs_with_kv_cache() -> None:
    """Whoever wakes the KV cache by tag (vLLM's ``/wake_up?tags=kv_cache``, as RL frameworks do after refitting the
    weights) wakes the graphs' memory with it, if still asleep: their next replay must not write unmapped memory."""
    try:
        from vllm.device_allocator.cumem import CuMemAllocator
    except ImportError:
        return
    if getattr(CuMemAllocator, "_stasis_graphs", False):
        return
    original = CuMemAllocator.wake_up

    def wake_up(self: Any, tags: list[str] | None = None) -> None:
        original(self, tags)
        if tags is not None and "kv_cache" in tags and GRAPHS_TAG not in tags:
            if any(d.tag == GRAPHS_TAG and d.is_asleep for d in self.pointer_to_data.values()):
                original(self, [GRAPHS_TAG])

    CuMemAllocator.wake_up = wake_up
    CuMemAllocator._stasis_graphs = True


_created = False


def installed() -> bool:
    """Whether this process's CUDA graphs' pool is in the sleep pool (made by ``install``'s hook)."""
    return _created


def _unsuitable(platform: Any) -> str:
    """Why this server's graphs cannot live in the sleep pool, or "": it must run on CUDA with sleep mode (seen in
    its config, or where no config is current, in weights already allocated in the sleep pool)."""
    try:
        if not platform.is_cuda():
            return "not CUDA"
        from vllm.config import get_current_vllm_config_or_none
        from vllm.device_allocator.cumem import CuMemAllocator

        config = get_current_vllm_config_or_none()
        if config is not None:
            return "" if getattr(config.model_config, "enable_sleep_mode", False) else "no --enable-sleep-mode"
        pool = CuMemAllocator.get_instance().pointer_to_data
        return (
            "" if any(getattr(d, "tag", None) == "weights" for d in pool.values()) else "no weights in the sleep pool"
        )
    except (ImportError, AttributeError, AssertionError) as e:
        return f"{type(e).__name__}: {e}"


def _log(message: str) -> None:
    try:
        from vllm.logger import init_logger

        init_logger("vllm.stasis_engine").info("stasis: %s", message)
    except ImportError:
        print(f"stasis: {message}", file=sys.stderr, flush=True)


def _sleep_pool_id() -> Any:
    import torch
    from vllm.device_allocator.cumem import CuMemAllocator, get_pluggable_allocator

    allocator = CuMemAllocator.get_instance()
    pluggable = get_pluggable_allocator(allocator.python_malloc_callback, allocator.python_free_callback)
    pool = torch.cuda.MemPool(pluggable._allocator)
    # Kept alive with the allocator's own pools (vLLM holds them the same way, for the same torch reasons).
    allocator.allocator_and_pools[_POOL_KEY] = (pool, pluggable)
    global _created
    _created = True
    return pool.id


def gpu_memory(pointer_to_data: dict[int, Any]) -> dict[str, Any]:
    """The worker's GPU memory by owner: the device's used bytes, torch's caching allocator by pool, vLLM's
    sleep-mode pool by tag (mapped and asleep), what torch lists that has no memory behind it, the CUDA context's
    limits, and the rest (CUDA context, libraries, CUDA graphs' objects).

    torch lists two kinds of segment that hold no GPU memory: the sleep pool's allocations while asleep, and the
    segments vLLM released itself when a ``use_memory_pool`` block ended (``CuMemAllocator`` unmaps every allocation
    with nothing left in it, e.g. a load's temporary, and torch keeps listing the segment). Both are left out of
    ``torch_on_gpu``; the second is ``released``. The 0.79 GB "pool (0, 1)" of a sleeping 3B is, by every sign, one
    such segment: its size is one vocab x hidden bf16 tensor rounded up to 2 MiB, and a sleeping eager 3B uses 0.90
    GB of the device in all, 0.10 GB of it torch's default pool, which leaves no room for it
    (docs/decisions/0015-vllm-stale-graph-pools.md)."""
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
    tag_pools = _sleep_tag_pools()
    pool_ids = {tuple(v) for v in tag_pools.values() if isinstance(v, list)}
    pools, sizes = by_pool(torch.cuda.memory_snapshot(), sleep_pool, pool_ids)
    mapped_sleep = sum(t["mapped"] for t in tags.values())
    on_gpu = mapped_sleep + sum(v["total"] for k, v in pools.items() if k not in ("sleep-pool", "released"))
    used = int(total - free)
    return {
        "device_used": used,
        "torch_reserved": int(torch.cuda.memory_reserved()),
        "torch_allocated": int(torch.cuda.memory_allocated()),
        "torch_on_gpu": on_gpu,
        "sleep_pool_tags": tags,
        "torch_pools": pools,
        "sleep_tag_pools": tag_pools,
        "segment_sizes": sizes,
        "context": _context.limits(),
        "outside_torch": used - on_gpu,
    }


def by_pool(
    segments: list[dict[str, Any]], sleep_addresses: set[int], sleep_pool_ids: set[tuple[int, ...]]
) -> tuple[dict[str, dict[str, int]], dict[str, list[int]]]:
    """torch's segments summed by owner: ``sleep-pool`` (an allocation the sleep-mode allocator tracks, mapped or
    asleep), ``released`` (a segment of one of its pools that it no longer tracks: unmapped, no memory behind it),
    else ``pool(a, b)`` by torch's pool id; and the four largest segment sizes of each owner but the sleep pool."""
    pools: dict[str, dict[str, int]] = {}
    sizes: dict[str, list[int]] = {}
    for seg in segments:
        pool_id = tuple(seg.get("segment_pool_id", (0, 0)))
        if int(seg["address"]) in sleep_addresses:
            key = "sleep-pool"
        elif pool_id in sleep_pool_ids:
            key = "released"
        else:
            key = f"pool{pool_id}"
        entry = pools.setdefault(key, {"segments": 0, "total": 0, "allocated": 0})
        entry["segments"] += 1
        entry["total"] += int(seg["total_size"])
        entry["allocated"] += int(seg["allocated_size"])
        if key != "sleep-pool":
            sizes.setdefault(key, []).append(int(seg["total_size"]))
    return pools, {k: sorted(v, reverse=True)[:4] for k, v in sizes.items()}


def _sleep_tag_pools() -> dict[str, Any]:
    try:
        from vllm.device_allocator.cumem import CuMemAllocator

        pools = CuMemAllocator.get_instance().allocator_and_pools
        return {str(tag): list(getattr(pair[0], "id", ())) for tag, pair in pools.items()}
    except Exception as e:  # a diagnostic: never the reason a capture fails
        return {"error": f"{type(e).__name__}: {e}"[:200]}
