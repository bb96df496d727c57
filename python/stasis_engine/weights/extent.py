"""A raw range of memory, named by its address: what a vLLM weights-pool allocation is."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StasisEngineError


@dataclass(frozen=True, order=True)
class Extent:
    """``size`` bytes at ``address`` (GPU memory unless the call says ``device="cpu"``).

    Example: ``Extent(address=0x7F3A00000000, size=2 << 20)``.
    """

    address: int
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, int) or not isinstance(self.size, int) or isinstance(self.address, bool):
            raise StasisEngineError(
                "bad_argument", f"Extent needs integer address and size, got {self.address!r}, {self.size!r}"
            )
        if self.address <= 0 or self.size < 0:
            raise StasisEngineError(
                "bad_argument",
                f"Extent needs address > 0 and size >= 0, got address={self.address:#x}, size={self.size}",
            )

    @property
    def end(self) -> int:
        return self.address + self.size
