"""``StasisWorkerExtension``: fast weights for vLLM, callable through ``POST /collective_rpc``.

Start vLLM with ``--enable-sleep-mode --worker-extension-cls stasis_engine.vllm.extension.StasisWorkerExtension``
(and ``VLLM_SERVER_DEV_MODE=1`` for /collective_rpc). vLLM adds these methods to every GPU worker; ``self``
is the worker. Arguments are strings (collective_rpc passes strings only).

- ``stasis_dump_weights(path)``: dump the "weights" pool allocations by (address, size). ``{rank}`` in the
  path becomes the worker's rank (required when there are several workers).
- ``stasis_load_weights(path, method="auto", verify="false")``: refill those allocations in place, after
  ``POST /wake_up?tags=weights`` and before waking the KV cache. Refuses, writing nothing, when the live
  layout differs from the dump or the weights are not mapped.
- ``stasis_weights_layout(path="")``: the live layout; with a path, also whether it matches that dump.
- ``stasis_adopt_weights(socket)``: take the weights a stager filled beside the restore (one allocation per weights
  extent, ``python -m stasis_engine.weights.stage``) and map them at the sleeping weights' addresses, instead of
  waking empty memory and refilling it. vLLM's own bookkeeping is kept true: the adopted allocations are hidden
  from the allocator until ``POST /wake_up?tags=weights`` has run (which then maps nothing, restores the model's
  buffers and marks the weights awake), and ``stasis_adopt_settle()`` gives them back their tag.
- ``stasis_gpu_memory()``: the worker's GPU memory by owner (torch's pools, the sleep-mode pool by tag, the
  rest: CUDA context and libraries), which is what the CUDA checkpoint copies when asked after a level-2 sleep.
- ``stasis_wake_tags(tags)``: map again the sleep pool's allocations of other tags (comma-separated) than vLLM's
  own two: vLLM's ``POST /wake_up`` wakes nothing when asked for a tag it did not put to sleep itself.
- ``stasis_parallel()``: the worker's place in the parallel layout (world size, tensor/pipeline/data parallel
  sizes, local rank, device) and which all-reduce paths that map other workers' GPU memory are live in its
  tensor-parallel group (``_parallel``), for the capture to refuse what the CUDA checkpoint cannot take.
- ``stasis_comm_suspend(timeout_s="60")`` / ``stasis_comm_resume(timeout_s="60")``: suspend vLLM's NCCL
  communicators (``ncclCommSuspend``, NCCL 2.29.7+) after the sleep and before the CUDA checkpoint of a
  multi-worker server, and resume them before its wake (``_comms``); every worker at once, each call bounded.
- ``stasis_trim_host_memory()``: give the worker's freed host memory back (Python garbage, torch's pinned cache,
  glibc's free lists) after ``POST /sleep?level=2`` and before the checkpoint, so it is not in the image;
  answers ``ms``, ``trimmed`` and private dirty bytes before and after. The API server process is not trimmed.
  Where ``STASIS_VLLM_CONTEXT_STACK`` is set, it also sets the CUDA context's stack size back (``_context``:
  its local memory is in the GPU state the checkpoint copies) and answers what that freed under ``context``.

Each returns ``{"ok": true, "rank": r, "world_size": n, ...}`` or ``{"ok": false, "rank": r, "world_size": n,
"error": {code, message, hint}}``, so the product gets a structured answer per worker rather than vLLM's generic
RPC failure, and can check that every one of the ``n`` workers answered.

Example::

    curl -s localhost:8000/collective_rpc -H content-type:application/json \\
      -d '{"method": "stasis_load_weights", "args": ["/snap/weights-rank{rank}.stasisw"]}'
    # {"results": [{"ok": true, "rank": 0, "path": "...", "stats": {"gbps": 51.2, ...}}]}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import StasisEngineError
from ..weights.dump import dump
from ..weights.extent import Extent
from ..weights.format import read_header
from ..weights.load import METHODS, load_into
from . import _pool


class StasisWorkerExtension:
    """Mixed into vLLM's GPU worker; every name is prefixed so none clashes with the worker's own."""

    def stasis_weights_layout(self, path: str = "") -> dict[str, Any]:
        def run() -> dict[str, Any]:
            live = self._stasis_live_extents()
            out: dict[str, Any] = {
                "device": str(self._stasis_device()),
                **_pool.layout_json(live),
                "stage": _pool.stage_info(),
            }
            if path:
                target = self._stasis_path(path)
                problems = _layout_problems(target, live)
                out.update(path=target, matches=not problems, problems=problems[:20])
            return out

        return self._stasis_call(run)

    def stasis_dump_weights(self, path: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            target = self._stasis_path(path)
            live = self._stasis_live_extents()
            _refuse_asleep(self._stasis_asleep())
            meta = {
                "engine": "vllm",
                "rank": self._stasis_rank(),
                "model": self._stasis_model(),
                "tag": _pool.WEIGHTS_TAG,
            }
            stats = dump(live, target, device=self._stasis_device(), meta=meta)
            return {"path": target, "stats": stats.to_dict(), **_pool.layout_json(live)}

        return self._stasis_call(run)

    def stasis_load_weights(self, path: str, method: str = "auto", verify: str = "false") -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if method not in METHODS:
                raise StasisEngineError("bad_argument", f"method={method!r}, expected one of {', '.join(METHODS)}")
            target = self._stasis_path(path)
            live = self._stasis_live_extents()
            problems = _layout_problems(target, live)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise StasisEngineError(
                    "weights_layout",
                    f"live weights layout differs from the dump {target}: {problems[0]}{more}",
                    hint="start the engine exactly as at capture (same model, dtype, parallelism, quantization, vLLM)",
                    details={"problems": problems[:20], "count": len(problems)},
                )
            _refuse_asleep(self._stasis_asleep())
            stats = load_into(live, target, method=method, verify=_flag(verify), device=self._stasis_device())
            return {"path": target, "stats": stats.to_dict()}

        return self._stasis_call(run)

    def stasis_adopt_weights(self, socket_path: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            from ..weights.handoff import take_memory

            start = time.perf_counter()
            device = self._stasis_device()
            index = device.index if device.index is not None else _current_device()
            out = take_memory(socket_path, lambda pieces, fds: _pool.adopt(self._stasis_pool(), pieces, fds, index))
            return {**out, "settle": True, "seconds": round(time.perf_counter() - start, 4)}

        return self._stasis_call(run)

    def stasis_adopt_settle(self) -> dict[str, Any]:
        return self._stasis_call(lambda: {"allocations": _pool.settle(self._stasis_pool())})

    def stasis_gpu_memory(self) -> dict[str, Any]:
        from . import _graphs

        return self._stasis_call(
            lambda: {**_graphs.gpu_memory(self._stasis_pool()), "graphs": "sleep" if _graphs.installed() else "gpu"}
        )

    def stasis_wake_tags(self, tags: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            names = [t for t in tags.split(",") if t]
            if not names or any(t in ("weights", "kv_cache") for t in names):
                raise StasisEngineError(
                    "bad_argument",
                    f"tags={tags!r}: expected a comma-separated list of tags other than weights and kv_cache",
                    hint="wake weights and kv_cache through vLLM's POST /wake_up, which keeps its own account of them",
                )
            _pool.allocator().wake_up(tags=names)
            return {"woken": names}

        return self._stasis_call(run)

    def stasis_parallel(self) -> dict[str, Any]:
        from ._parallel import parallel_facts

        return self._stasis_call(lambda: parallel_facts(self))

    def stasis_comm_suspend(self, timeout_s: str = "60") -> dict[str, Any]:
        from . import _comms

        return self._stasis_call(lambda: _comms.suspend(*_comms_args(timeout_s)))

    def stasis_comm_resume(self, timeout_s: str = "60") -> dict[str, Any]:
        from . import _comms

        return self._stasis_call(lambda: _comms.resume(*_comms_args(timeout_s)))

    def stasis_trim_host_memory(self) -> dict[str, Any]:
        from ..host_trim import trim_host_memory
        from ._context import set_stack_from_env

        # One round trip before the checkpoint (a hibernate's time counts): the CUDA context's stack is set back here
        # too, where STASIS_VLLM_CONTEXT_STACK asks for it; its failure is said, and the host trim stands.
        def run() -> dict[str, Any]:
            out = trim_host_memory(measure=True)
            try:
                context = set_stack_from_env()
            except StasisEngineError as e:
                context = {"applied": False, "error": e.to_dict()}
            return {**out, "context": context}

        return self._stasis_call(run)

    # Helpers: underscore-prefixed and namespaced, since vLLM refuses extension names the worker already has.

    def _stasis_call(self, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        who = {"rank": self._stasis_rank(), "world_size": self._stasis_world_size()}
        try:
            return {"ok": True, **who, **run()}
        except StasisEngineError as e:
            return {"ok": False, **who, "error": e.to_dict()}

    def _stasis_rank(self) -> int:
        return int(getattr(self, "rank", 0) or 0)

    def _stasis_world_size(self) -> int:
        parallel = getattr(self, "parallel_config", None)
        return int(getattr(parallel, "world_size", 1) or 1)

    def _stasis_device(self) -> Any:
        device = getattr(self, "device", None)
        if device is None:
            import torch

            return torch.device("cuda", torch.cuda.current_device())
        return device

    def _stasis_model(self) -> str | None:
        model = getattr(getattr(self, "model_config", None), "model", None)
        return str(model) if model is not None else None

    def _stasis_path(self, path: str) -> str:
        return _pool.format_path(path, self._stasis_rank(), self._stasis_world_size())

    def _stasis_pool(self) -> Any:
        return _pool.allocator().pointer_to_data

    def _stasis_live_extents(self) -> list[Extent]:
        live = _pool.pool_extents(self._stasis_pool())
        if not live:
            raise StasisEngineError(
                "vllm_no_weights_pool",
                "vLLM's allocator holds no 'weights' allocations",
                hint="start vLLM with --enable-sleep-mode so the weights live in its memory pool",
            )
        return live

    def _stasis_asleep(self) -> list[Extent]:
        return _pool.asleep_extents(self._stasis_pool())


def _layout_problems(path: str, live: list[Extent]) -> list[str]:
    from ..weights._targets import Target, layout_problems

    header = read_header(path)
    if header.kind != "extents":
        return [f"{path} holds named tensors, not a vLLM weights-pool dump"]
    targets = [Target(e.address, e.address, e.size) for e in live]
    return [text for _, text in layout_problems(header.extents, targets, True)]


def _refuse_asleep(asleep: list[Extent]) -> None:
    if asleep:
        raise StasisEngineError(
            "vllm_weights_asleep",
            f"{len(asleep)} weights allocations are not mapped (first {asleep[0].address:#x})",
            hint="POST /wake_up?tags=weights first",
        )


def _comms_args(timeout_s: str) -> tuple[Any, float]:
    seconds = _seconds(timeout_s)  # a bad argument is said before anything else
    return _parallel_state(), seconds


def _parallel_state() -> Any:
    try:
        from vllm.distributed import parallel_state
    except ImportError as e:
        raise StasisEngineError(
            "vllm_unavailable", f"vLLM's parallel state is not importable here ({e})", hint="run inside a vLLM worker"
        ) from e
    return parallel_state


def _seconds(value: str | float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise StasisEngineError("bad_argument", f"timeout_s={value!r}, expected seconds in (0, 3600]")
    return seconds


def _on_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _current_device() -> int:
    import torch

    return int(torch.cuda.current_device())


def _flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
