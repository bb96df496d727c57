"""vLLM's sleep-mode memory pool, seen as raw extents, and the helpers around it (no vLLM import at load time).

vLLM allocates the model's weights inside ``CuMemAllocator.use_memory_pool(tag="weights")``; the allocator
singleton keeps ``pointer_to_data: dict[int, AllocationData]`` where ``AllocationData.handle`` is
``(device, size, d_mem, p_memHandle)`` and ``.tag`` the pool's tag (vllm/device_allocator/cumem.py).
Sleep level 2 unmaps those allocations but keeps their addresses; wake maps new memory at the same ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..errors import StasisEngineError
from ..weights.extent import Extent

WEIGHTS_TAG = "weights"


def allocator() -> Any:
    """The process's CuMemAllocator singleton (vLLM's sleep-mode allocator)."""
    try:
        try:
            from vllm.device_allocator import get_mem_allocator_instance  # newer vLLM

            return get_mem_allocator_instance()
        except ImportError:
            from vllm.device_allocator.cumem import CuMemAllocator

            return CuMemAllocator.get_instance()
    except (ImportError, AssertionError, AttributeError, RuntimeError) as e:
        raise StasisEngineError(
            "vllm_unavailable", f"vLLM's sleep-mode allocator is not available here ({type(e).__name__}: {e})",
            hint="run inside a vLLM GPU worker started with --enable-sleep-mode",
        ) from e


def pool_extents(pointer_to_data: Mapping[int, Any], tag: str = WEIGHTS_TAG) -> list[Extent]:
    """The allocations of one pool as ``Extent(address, size)``, in address order."""
    out = []
    for ptr, data in pointer_to_data.items():
        if getattr(data, "tag", None) != tag:
            continue
        handle = data.handle
        address = int(handle[2]) if len(handle) > 2 else int(ptr)
        out.append(Extent(address, int(handle[1])))
    return sorted(out)


def asleep_extents(pointer_to_data: Mapping[int, Any], tag: str = WEIGHTS_TAG) -> list[Extent]:
    """Allocations vLLM marks as unmapped (``is_asleep``; older vLLM has no flag and returns none here)."""
    return [
        Extent(int(data.handle[2]), int(data.handle[1]))
        for data in pointer_to_data.values()
        if getattr(data, "tag", None) == tag and getattr(data, "is_asleep", False)
    ]


def format_path(path: str, rank: int, world_size: int = 1) -> str:
    """Put the worker's rank into ``{rank}``; refuse a rank-less path when several workers would share it."""
    if not isinstance(path, str) or not path:
        raise StasisEngineError("bad_argument", f"path must be a non-empty string, got {path!r}")
    if "{rank}" not in path and world_size > 1:
        raise StasisEngineError(
            "bad_argument", f"path {path!r} has no {{rank}} and {world_size} workers would write it",
            hint="put {rank} in the path, e.g. /snap/weights-rank{rank}.stasisw",
        )
    return path.replace("{rank}", str(rank))


def layout_json(extents: list[Extent]) -> dict[str, Any]:
    """JSON-able layout: extents (hex addresses), count, bytes and a digest to compare layouts cheaply."""
    return {
        "extents": [{"address": f"{e.address:#x}", "size": e.size} for e in extents],
        "count": len(extents),
        "bytes": sum(e.size for e in extents),
        "digest": layout_digest(extents),
    }


def layout_digest(extents: list[Extent]) -> str:
    """sha256 over "address:size" lines in address order: equal digests mean equal layouts."""
    text = "".join(f"{e.address:#x}:{e.size}\n" for e in sorted(extents))
    return hashlib.sha256(text.encode()).hexdigest()
