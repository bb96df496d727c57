"""Timing start-up phases: one machine-readable ``stasis-phase {json}`` line per phase, plus the records."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..host_trim import private_dirty_bytes


def emit(tag: str, payload: dict[str, Any]) -> None:
    """Print ``tag {json}`` on one line (the launcher's log file is where it lands)."""
    sys.stdout.write(f"{tag} {json.dumps(payload, separators=(',', ':'), default=str)}\n")
    sys.stdout.flush()


def private_dirty_mb() -> int | None:
    """The process's private dirty memory after a phase: what CRIU would write into a snapshot image."""
    n = private_dirty_bytes()
    return None if n is None else n >> 20


class Phases:
    """Collects ``{"phase": name, "ms": ..., **info}`` records, printing each as it ends.

    Example::

        phases = Phases()
        with phases.phase("load_weights") as info:
            info["bytes"] = load()
    """

    def __init__(self, printer: Callable[[str, dict[str, Any]], None] = emit) -> None:
        self.records: list[dict[str, Any]] = []
        self._print = printer

    @contextmanager
    def phase(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        start = time.perf_counter()
        extra: dict[str, Any] = dict(info)
        try:
            yield extra
        finally:
            self.add(name, (time.perf_counter() - start) * 1000.0, **extra)

    def add(self, name: str, ms: float, **info: Any) -> None:
        record = {"phase": name, "ms": round(ms, 1), **info, "private_dirty_mb": private_dirty_mb()}
        self.records.append(record)
        self._print("stasis-phase", record)
