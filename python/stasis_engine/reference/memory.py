"""What the engine process holds (host RSS, GPU memory, threads, children) and giving host memory back.

After sleep the engine process is checkpointed: everything it still holds on the host, or on the GPU
(copied to the host by the CUDA checkpoint), ends up in the snapshot image. ``trim`` drops what can go.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import torch

from ..host_trim import trim_host_memory


def host_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def process_info() -> dict[str, Any]:
    """Threads and child processes: CRIU dumps all of them, so none should linger after start-up."""
    tasks = os.listdir("/proc/self/task")
    children: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                children += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return {"pid": os.getpid(), "threads": len(tasks), "children": children}


def gpu_info(device: torch.device, *, pools: bool = False) -> dict[str, Any]:
    """GPU memory in use; with ``pools``, also torch's segments by pool (a walk of every block: not for wake,
    which is on the restore path)."""
    if device.type != "cuda":
        return {}
    free, total = torch.cuda.mem_get_info(device)
    out = {
        "device_used_bytes": total - free,
        "device_total_bytes": total,
        "torch_allocated_bytes": torch.cuda.memory_allocated(device),
        "torch_reserved_bytes": torch.cuda.memory_reserved(device),
    }
    return {**out, "torch_segments": segments(device)} if pools else out


def segments(device: torch.device) -> dict[str, Any]:
    """torch's reserved GPU memory by pool: the default pool and the private pools of captured CUDA graphs.

    What is reserved but not allocated still goes into a snapshot (the CUDA checkpoint copies every mapped byte):
    in a private pool it is the graphs' scratch, in the default pool fragmentation (a live block pins its segment).
    """
    out: dict[str, Any] = {}
    for seg in torch.cuda.memory_snapshot():
        if seg.get("device", device.index) != device.index:
            continue
        pool = "default" if tuple(seg.get("segment_pool_id", (0, 0))) == (0, 0) else "graphs"
        row = out.setdefault(pool, {"segments": 0, "reserved_bytes": 0, "allocated_bytes": 0, "largest_bytes": 0})
        row["segments"] += 1
        row["reserved_bytes"] += seg["total_size"]
        row["allocated_bytes"] += seg["allocated_size"]
        row["largest_bytes"] = max(row["largest_bytes"], seg["total_size"])
    return out


def snapshot(device: torch.device, *, pools: bool = False) -> dict[str, Any]:
    return {"host_rss_bytes": host_rss_bytes(), **gpu_info(device, pools=pools), **process_info()}


def freeze_startup_objects() -> None:
    """Move everything start-up created out of the collector's reach: later collections only walk new objects."""
    gc.collect()
    gc.freeze()


def trim(device: torch.device, *, collect: bool = True, measure: bool = False) -> dict[str, Any]:
    """Return freed memory: torch's CUDA cache, then the host's (``host_trim.trim_host_memory``: Python garbage
    when ``collect``, torch's pinned-host cache, glibc's free lists). Returns the host trim's report."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    return trim_host_memory(collect=collect, measure=measure)
