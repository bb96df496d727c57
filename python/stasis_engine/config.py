"""The STASIS_* variables the engine side reads from its own environment, in one place.

What a restore or capture decides (which weights file, on which GPU, how many images a keeper keeps pinned) comes
in the job or on the command line from the TypeScript side (``src/config/knobs.ts`` holds the user's settings).
What is left here is an alternative being measured, not a setting a user needs: read when it is used (nothing at
import time), a bad value a ``StasisEngineError`` naming the variable, the value and what was expected.

Example::

    mode = config.get("STASIS_VLLM_GRAPHS")   # "sleep" unless set
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StasisEngineError


@dataclass(frozen=True)
class Variable:
    name: str
    expected: str
    default: Any
    doc: str
    parse: Callable[[str], Any]


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError
    return raw == "1"


def _stack(raw: str) -> int | None:
    text = raw.strip().lower()
    if text == "keep":
        return None
    value = int(text)  # a ValueError for anything but a whole number
    # Below the driver's default the next launch fails (invalid argument: docs/benchmarks.md, measured on the H100).
    if value < 1024 or value > 1 << 20:
        raise ValueError
    return value


def _graphs(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in ("sleep", "gpu"):
        raise ValueError
    return mode


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable(
            "STASIS_VLLM_GRAPHS",
            "sleep (the default) or gpu",
            "sleep",
            "gpu: vLLM's CUDA graph pool left on the GPU asleep instead of in its sleep-mode allocator (for measuring)",
            _graphs,
        ),
        Variable(
            "STASIS_VLLM_CONTEXT_STACK",
            "keep (the default) or the CUDA stack size per thread in bytes, 1024 (the driver's default) to 1048576",
            None,
            "set the CUDA context's stack size to this before a checkpoint (its local memory shrinks with it; for "
            "measuring, vllm/_context.py)",
            _stack,
        ),
    ]
}


def get(name: str, env: Mapping[str, str] | None = None) -> Any:
    """``name``'s value from ``env`` (default: this process's environment), or its default where it is unset or
    empty."""
    var = VARIABLES[name]
    raw = (os.environ if env is None else env).get(name, "")
    if raw == "":
        return var.default
    try:
        return var.parse(raw)
    except ValueError:
        raise StasisEngineError(
            "bad_argument",
            f"{name}={raw!r} is not valid: expected {var.expected}",
            hint=f"set {name} to {var.expected}, or unset it",
        ) from None
