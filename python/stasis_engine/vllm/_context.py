"""The CUDA context's own GPU memory in a sleeping worker: its limits, and its local memory set back on request.

Of what a sleeping vLLM keeps on the GPU, most is outside torch: the CUDA context (0.78 GB for the 3B shape
without CUDA graphs). A context reserves local memory for every thread the GPU can hold at once: the per-thread
stack size x threads per SM x SMs, 277 MB on an H100 at the default 1 KiB. The driver raises the stack size for
any kernel that needs more and never lowers it, and the CUDA checkpoint copies the reservation like any other
allocation (out at a hibernate, back at every restore).

``STASIS_VLLM_CONTEXT_STACK`` (bytes, at least the driver's default 1 KiB) sets the stack size to that value right
before the checkpoint (``cuCtxSetLimit``); the driver raises it again at the launch of a kernel that needs more. Below
1 KiB the next launch fails (``invalid argument``, measured on the H100 with torch's own kernels, which left the stack
at 1 KiB), so what this can free is only what a server's kernels raised it to above that: the capture's gpu-memory
phase reports the stack size a sleeping vLLM has (``context``), and whether setting it back pays for the raise at the
first request is what a GPU run side by side says. An alternative being measured, unset by default.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from .. import config
from ..errors import StasisEngineError

ENV = "STASIS_VLLM_CONTEXT_STACK"
# CUlimit values (cuda.h).
_LIMITS = {"stack_size": 0, "printf_fifo_size": 1, "malloc_heap_size": 2}


@functools.cache
def _libcuda() -> Any:
    return ctypes.CDLL("libcuda.so.1")


def limits() -> dict[str, Any]:
    """The current context's limits (bytes) and the local memory its stack size reserves, as the driver sizes it."""
    import torch

    torch.cuda.synchronize()  # the runtime's primary context current on this thread
    out: dict[str, Any] = {}
    try:
        lib = _libcuda()
    except OSError as e:
        return {"error": f"libcuda: {e}"[:200]}
    for name, code in _LIMITS.items():
        value = ctypes.c_size_t()
        rc = lib.cuCtxGetLimit(ctypes.byref(value), code)
        out[name] = int(value.value) if rc == 0 else f"CUDA error {rc}"
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    threads = int(props.multi_processor_count) * int(getattr(props, "max_threads_per_multi_processor", 2048))
    out["threads"] = threads
    if isinstance(out["stack_size"], int):
        out["local_memory_bytes"] = out["stack_size"] * threads
    return out


def set_stack_from_env() -> dict[str, Any]:
    """Where ``STASIS_VLLM_CONTEXT_STACK`` is set, the context's stack size set to it, with the device's used bytes
    before and after; else nothing done. A CUDA error is a ``StasisEngineError`` (the caller's trim is best effort)."""
    want = config.get(ENV)
    if want is None:
        return {"applied": False}
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        raise StasisEngineError("no_cuda", f"{ENV} is set but this worker has no CUDA context", hint=f"unset {ENV}")
    before = limits()
    free_before, _ = torch.cuda.mem_get_info()
    rc = _libcuda().cuCtxSetLimit(_LIMITS["stack_size"], ctypes.c_size_t(want))
    if rc != 0:
        raise StasisEngineError(
            "cuda_error",
            f"cuCtxSetLimit(CU_LIMIT_STACK_SIZE, {want}) failed: CUDA error {rc}",
            hint=f"unset {ENV}",
        )
    torch.cuda.synchronize()
    free_after, _ = torch.cuda.mem_get_info()
    return {
        "applied": True,
        "stack_before": before.get("stack_size"),
        "stack_after": want,
        "freed_bytes": int(free_after - free_before),
    }
