"""What a dump, a load and a verify report back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9 if seconds > 0 else 0.0


@dataclass
class LoadStats:
    """One ``load_into``: bytes moved, wall time (validation and cleanup included) and where it went.

    ``stages`` holds seconds per stage (``validate``, ``verify``, ``alloc``, ``pipeline``, ``cleanup``, ...);
    stages of a pipeline overlap, so they do not add up to ``seconds``.
    """

    bytes: int
    seconds: float
    method: str
    threads: int
    stages: dict[str, float] = field(default_factory=dict)
    extents: int = 0
    copies: int = 0
    windows: int = 0
    residency: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gbps(self) -> float:
        return _gbps(self.bytes, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gbps"] = round(self.gbps, 3)
        return out


@dataclass
class DumpStats:
    """One ``dump``: the file written, its payload and the time it took (fsync and rename included)."""

    path: str
    bytes: int
    file_size: int
    extents: int
    seconds: float

    @property
    def gbps(self) -> float:
        return _gbps(self.bytes, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gbps"] = round(self.gbps, 3)
        return out


@dataclass
class VerifyStats:
    """One ``verify``: how many extents and bytes were hashed, and how long it took."""

    path: str
    bytes: int
    extents: int
    seconds: float

    @property
    def gbps(self) -> float:
        return _gbps(self.bytes, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gbps"] = round(self.gbps, 3)
        return out
