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
# The tag adopted weights carry between their adoption and ``settle``: ``POST /wake_up?tags=weights`` then finds
# no allocation of its tag to map (they are mapped already) and does the rest of vLLM's wake.
ADOPTED_TAG = "stasis-adopted-weights"


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
            "vllm_unavailable",
            f"vLLM's sleep-mode allocator is not available here ({type(e).__name__}: {e})",
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
            "bad_argument",
            f"path {path!r} has no {{rank}} and {world_size} workers would write it",
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


def stage_info() -> dict[str, Any]:
    """What a stager needs to run beside a restore of this worker: its interpreter and the folder holding the
    stasis_engine package (for PYTHONPATH)."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"python": sys.executable, "path": os.path.dirname(package)}


def adopt(
    pointer_to_data: Mapping[int, Any], pieces: list[int], fds: list[int], device: int, driver: Any = None
) -> dict[str, Any]:
    """Maps the stager's allocations (``fds``, of ``pieces`` bytes, in address order) at the sleeping weights'
    addresses, all or none: the sizes must be the pool's, in order, and on any failure what was mapped is
    unmapped again. Each allocation's handle goes where vLLM's allocator keeps it (``p_memHandle``), so its next
    sleep unmaps and releases them as its own; until ``settle`` they carry ``ADOPTED_TAG``."""
    import ctypes

    from ..weights import _cudadrv

    pool = sorted(
        (data for data in pointer_to_data.values() if getattr(data, "tag", None) == WEIGHTS_TAG),
        key=lambda d: int(d.handle[2]),
    )
    sizes = [int(d.handle[1]) for d in pool]
    awake = [d for d in pool if not getattr(d, "is_asleep", True)]
    if awake:
        raise StasisEngineError(
            "vllm_weights_awake",
            f"{len(awake)} weights allocations are mapped already (first {int(awake[0].handle[2]):#x})",
            hint="adopt only while the weights sleep",
        )
    if sizes != pieces:
        first = next(
            (i for i, (a, b) in enumerate(zip(sizes, pieces, strict=False)) if a != b), min(len(sizes), len(pieces))
        )
        raise StasisEngineError(
            "weights_layout",
            f"the stager offers {len(pieces)} allocations, the weights pool has "
            f"{len(sizes)}; they differ from allocation {first}",
            hint="the stager was given another layout than this engine's",
        )
    drv = driver or _cudadrv.Driver()
    mapped: list[tuple[Any, int]] = []
    try:
        for data, fd in zip(pool, fds, strict=True):
            _, size, address, _ = data.handle
            mapped.append((data, _cudadrv.map_imported(drv, fd, int(address), int(size), device)))
    except BaseException:
        for data, handle in mapped:  # invariant: a failed adoption leaves the pool asleep, as it found it
            drv.call("cuMemUnmap", int(data.handle[2]), int(data.handle[1]))
            drv.call("cuMemRelease", handle)
        raise
    for data, handle in mapped:
        ctypes.c_uint64.from_address(int(data.handle[3])).value = handle
        data.is_asleep = False
        data.tag = ADOPTED_TAG
    return {"bytes": sum(sizes), "allocations": len(mapped)}


def settle(pointer_to_data: Mapping[int, Any]) -> int:
    """Gives adopted allocations their weights tag back (after ``POST /wake_up?tags=weights``); how many."""
    adopted = [data for data in pointer_to_data.values() if getattr(data, "tag", None) == ADOPTED_TAG]
    for data in adopted:
        data.tag = WEIGHTS_TAG
    return len(adopted)
