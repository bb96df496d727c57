"""Arenas: one fixed range of addresses whose backing memory can be dropped and brought back.

The engine lays all weights (and, separately, the KV cache) out in an arena and points the model's tensors
at views of it. Sleep drops the backing memory but keeps the addresses; wake backs them again, so every
pointer taken earlier (tensor views, torch.compile'd code, captured CUDA graphs) stays valid.

``HostArena`` is the CPU analogue of ``CudaArena`` (cuda_arena.py): a private anonymous mmap whose pages
``madvise(MADV_DONTNEED)`` hands back to the kernel; touching them afterwards reads zeros.
"""

from __future__ import annotations

import mmap
from typing import Protocol

import torch

ALIGN = 256


def align_up(n: int, alignment: int = ALIGN) -> int:
    return (n + alignment - 1) // alignment * alignment


class Arena(Protocol):
    name: str
    size: int
    address: int
    mapped: bool

    def tensor(self) -> torch.Tensor:
        """All ``size`` bytes as one uint8 tensor (valid to touch only while ``mapped``)."""
        ...

    def release(self) -> None:
        """Drop the backing memory, keep the addresses (contents are lost)."""
        ...

    def restore(self) -> None:
        """Back the same addresses with memory again (contents undefined until written)."""
        ...


class HostArena:
    """``size`` bytes of host memory at a fixed address."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = max(align_up(size, mmap.PAGESIZE), mmap.PAGESIZE)
        # Private + anonymous: MADV_DONTNEED then really frees the pages (a shared mapping would keep them).
        self._map = mmap.mmap(-1, self.size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._tensor = torch.frombuffer(self._map, dtype=torch.uint8)
        self.address = self._tensor.data_ptr()
        self.mapped = True

    def tensor(self) -> torch.Tensor:
        return self._tensor

    def release(self) -> None:
        self._map.madvise(mmap.MADV_DONTNEED, 0, self.size)
        self.mapped = False

    def restore(self) -> None:
        self.mapped = True
