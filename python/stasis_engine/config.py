"""The STASIS_* variables the engine side reads from its own environment, in one place.

What a restore or capture decides (which weights file, on which GPU, how many images a keeper keeps pinned) comes
in the job or on the command line from the TypeScript side (``src/config/knobs.ts`` holds the user's settings).
What is left here are alternatives for measuring and for the tests, not settings a user needs: each is read when
it is used (nothing at import time), and a bad value is a ``StasisEngineError`` naming the variable, the value and
what was expected.

Example::

    threads = config.get("STASIS_STAGE_THREADS")   # None: unset, the caller's default
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


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError
    return int(raw)


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError
    return raw == "1"


def _graphs(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in ("sleep", "gpu"):
        raise ValueError
    return mode


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable(
            "STASIS_STAGE_THREADS", "an integer >= 1", None, "the stager's reading threads (8 hot, 16 cold)", _positive
        ),
        Variable("STASIS_NATIVE_LANES", "0 or 1", True, "0: the lanes' Python loop instead of the C one", _flag),
        Variable(
            "STASIS_REFERENCE_COMPILE_THREADS",
            "an integer >= 1",
            None,
            "the reference engine's compile workers (default: every core)",
            _positive,
        ),
        Variable(
            "STASIS_VLLM_GRAPHS",
            "gpu (the default) or sleep",
            "gpu",
            "sleep: vLLM's CUDA graph pool in its sleep-mode allocator (experimental: such snapshots do not serve yet)",
            _graphs,
        ),
        Variable(
            "STASIS_VLLM_GPU_TRIM",
            "0 or 1",
            True,
            "0: leave vLLM's stale CUDA graph pools on the GPU at capture (for measuring what freeing them saves)",
            _flag,
        ),
        Variable(
            "STASIS_REFERENCE_COMPILE_BACKEND",
            "a torch.compile backend",
            "inductor",
            "the reference engine's torch.compile backend (the CPU tests use eager)",
            str,
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
