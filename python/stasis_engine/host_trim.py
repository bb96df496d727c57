"""Giving freed host memory back to the kernel right before a checkpoint, and measuring what that saved.

A snapshot's CRIU image holds the process's private dirty pages, and every restore writes them back. Freed heap
memory stays dirty: glibc keeps it on its free lists (torch.compile frees gigabytes), torch keeps freed pinned
blocks cached. ``trim_host_memory`` drops both. Used by the reference engine (at the end of start-up and at sleep)
and by the vLLM worker extension (``stasis_trim_host_memory``); it imports nothing heavy, and torch only where the
process has it.

Example (the 3B reference engine at sleep level 2 on the H100; start-up's own trim had already returned what
compile freed)::

    report = trim_host_memory(measure=True)
    # {"ms": 0.7, "trimmed": True, "private_dirty_before_bytes": 1305980928, "private_dirty_after_bytes": 1305505792}
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import sys
import time
from collections.abc import Callable
from typing import Any


def private_dirty_bytes() -> int | None:
    """The process's private dirty memory (smaps_rollup, Linux 4.14+): what CRIU writes into a snapshot image."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    with contextlib.suppress(OSError, AttributeError):
        fn = ctypes.CDLL("libc.so.6").malloc_trim
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
        return fn
    return None


def _empty_pinned_cache() -> None:
    """torch's cached pinned host blocks; only where CUDA is initialized (no pinned memory otherwise, and the
    call must not create a CUDA context in a CPU process that is about to be checkpointed)."""
    torch = sys.modules.get("torch")
    empty = getattr(getattr(torch, "_C", None), "_host_emptyCache", None)
    if empty is None or not torch.cuda.is_initialized():  # type: ignore[union-attr]
        return
    with contextlib.suppress(RuntimeError):
        empty()


def trim_host_memory(*, collect: bool = True, measure: bool = False) -> dict[str, Any]:
    """Collect Python garbage (``collect``), empty torch's pinned host cache, then ``malloc_trim(0)`` (every
    arena, every whole free page). ``ms`` is the trim's time; ``measure`` adds private dirty bytes before and
    after (each a walk of every mapping, so kept off the restore path)."""
    before = private_dirty_bytes() if measure else None
    start = time.perf_counter()
    if collect:
        gc.collect()
    _empty_pinned_cache()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    out: dict[str, Any] = {"ms": round((time.perf_counter() - start) * 1000, 1), "trimmed": trim is not None}
    if measure:
        out.update(private_dirty_before_bytes=before, private_dirty_after_bytes=private_dirty_bytes())
    return out
