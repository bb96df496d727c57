"""``collective_rpc`` methods of the reference engine (one worker, so one result each).

The same names as the vLLM worker extension's, so the stasis adapter drives both alike:
``stasis_weights_layout()``, ``stasis_dump_weights(path)``, ``stasis_load_weights(path)`` (fast refill via
stasis_engine.weights), ``reload_weights()`` (slow refill from the model's safetensors), ``stasis_status()``,
``stasis_trim_host_memory()`` (sleep already trims; a second trim costs a few ms and frees what came since).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import StasisEngineError
from . import memory
from .model import read_safetensors
from .model import safetensors_files as read_safetensors_paths

if TYPE_CHECKING:
    from .engine import Engine


_MID_LOAD = ("weights_io", "cuda_error")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise StasisEngineError("rpc_bad_args", f"{name}={value!r}, expected true or false")


def _reuse_key(e: Engine) -> str:
    """When two servers may share one weights dump: the same tensors (names, dtypes, shapes; loads go by name,
    so addresses may differ) from the same model files (path, size, mtime of each). stasis keeps one dump per key."""
    import hashlib
    import json
    import os

    files = []
    for f in sorted([*read_safetensors_paths(e.opts.model_dir), os.path.join(e.opts.model_dir, "config.json")]):
        st = os.stat(f)
        files.append([os.path.abspath(f), st.st_size, st.st_mtime_ns])
    tensors = [[s.name, str(s.dtype), list(s.shape)] for s in e.slots]
    return hashlib.sha256(json.dumps([files, tensors, str(e.device.type)]).encode()).hexdigest()


def _stage_info(e: Engine) -> dict[str, Any] | None:
    """What a restore needs to stage these weights beside it (stasis_engine.weights.stage), or None where they
    cannot be: the interpreter and import path of this engine, and the arena's size (tensors are at offsets)."""
    import os
    import sys

    if not hasattr(e.weights, "adopt"):
        return None
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"python": sys.executable, "path": os.path.dirname(package_root), "arena_size": e.weights.size}


def _rank_path(path: str) -> str:
    """Paths may carry ``{rank}`` (vLLM runs one worker per GPU); the reference engine is worker 0."""
    return path.replace("{rank}", "0")


class RpcMethods:
    def __init__(self, engine: Engine) -> None:
        self._e = engine
        self._methods: dict[str, Callable[..., Any]] = {
            "stasis_weights_layout": self.stasis_weights_layout,
            "stasis_dump_weights": self.stasis_dump_weights,
            "stasis_load_weights": self.stasis_load_weights,
            "stasis_adopt_weights": self.stasis_adopt_weights,
            "reload_weights": self.reload_weights,
            "stasis_status": self.stasis_status,
            "stasis_trim_host_memory": self.stasis_trim_host_memory,
        }

    def call(self, method: Any, args: Any, kwargs: Any) -> Any:
        fn = self._methods.get(method) if isinstance(method, str) else None
        if fn is None:
            raise StasisEngineError(
                "rpc_unknown_method",
                f"unknown collective_rpc method {method!r}",
                f"known: {', '.join(sorted(self._methods))}",
            )
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise StasisEngineError("rpc_bad_args", "collective_rpc needs args as a list and kwargs as an object")
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as e:
            raise StasisEngineError(
                "rpc_bad_args", f"{method}: {e}", f"signature: {method}{inspect.signature(fn)}"
            ) from e
        result = fn(*args, **kwargs)
        # The stasis methods answer like the vLLM worker extension's, one result per worker: {"ok", "rank", ...}.
        return {"ok": True, "rank": 0, "world_size": 1, **result} if method.startswith("stasis_") else result

    def stasis_weights_layout(self) -> dict[str, Any]:
        e = self._e
        return {
            "kind": "tensors",
            "device": str(e.device),
            "total_bytes": sum(s.nbytes for s in e.slots),
            "reuse_key": _reuse_key(e),
            "arena": {"address": e.weights.address, "size": e.weights.size},
            "extents": [{"address": e.weights.address, "size": e.weights.size}],
            "tensors": [s.to_dict() for s in e.slots],
            "state": e.weights_state,
            "stage": _stage_info(e),
        }

    def stasis_dump_weights(self, path: str) -> dict[str, Any]:
        from ..weights import dump

        e = self._e
        if e.weights_state != "ready":
            raise StasisEngineError(
                "weights_not_loaded",
                f"cannot dump weights that are {e.weights_state}",
                "dump while the engine is awake with its weights loaded",
            )
        stats = dump(
            e.views, _rank_path(path), meta={"model_dir": e.opts.model_dir, "served_model_name": e.info.served_name}
        )
        return stats.to_dict()

    def stasis_load_weights(self, path: str, method: str = "auto", verify: Any = False) -> dict[str, Any]:
        from ..weights import load_into

        e = self._e
        self._require_mapped()
        check = _flag(verify, "verify")
        try:
            stats = load_into(e.views, _rank_path(path), method=method, verify=check)
        except StasisEngineError as err:
            if err.code in _MID_LOAD:  # validation failures write nothing; these may have written part
                e.weights_state = "stale"
            raise
        except BaseException:
            e.weights_state = "stale"
            raise
        finally:
            memory.trim(e.device, collect=False)  # invariant: no pinned staging buffer of the load stays in the process
        e.weights_state = "ready"
        return stats.to_dict()

    def stasis_adopt_weights(self, socket_path: str) -> dict[str, Any]:
        """Takes the weights a stager filled (``python -m stasis_engine.weights.stage``) from its socket and maps
        them at the arena's addresses; acknowledges (``ok``) or answers the error, which it also raises."""
        from ..weights.handoff import take_memory

        def take(pieces: list[int], fds: list[int]) -> dict[str, Any]:
            if len(pieces) != 1:
                raise StasisEngineError(
                    "weights_layout",
                    f"the stager offers {len(pieces)} allocations, the arena takes one",
                    "the stager was given another layout than this engine's",
                )
            return self._e.adopt_weights(fds[0], pieces[0])

        start = time.perf_counter()
        out = take_memory(socket_path, take)
        return {**out, "seconds": round(time.perf_counter() - start, 4)}

    def reload_weights(self) -> dict[str, Any]:
        e = self._e
        self._require_mapped()
        start = time.perf_counter()
        try:
            out = read_safetensors(e.opts.model_dir, e.views, bool(e.config.tie_word_embeddings))
        except BaseException:
            e.weights_state = "stale"  # some tensors may have been written before the failure
            raise
        finally:
            memory.trim(e.device, collect=False)
        e.weights_state = "ready"
        return {**out, "seconds": round(time.perf_counter() - start, 3)}

    def stasis_status(self) -> dict[str, Any]:
        return self._e.status()

    def stasis_trim_host_memory(self) -> dict[str, Any]:
        return memory.trim(self._e.device, measure=True)

    def _require_mapped(self) -> None:
        if self._e.weights_state == "asleep":
            raise StasisEngineError(
                "engine_asleep",
                "the weights are asleep (no memory behind them)",
                "POST /wake_up?tags=weights first, then refill",
            )
