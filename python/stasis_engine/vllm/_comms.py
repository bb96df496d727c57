"""vLLM's NCCL communicators suspended around the CUDA checkpoint (``stasis_comm_suspend``/``stasis_comm_resume``).

vLLM's sleep leaves its communicators as they are (vllm/device_allocator/sleep_mode_backend.py:
``CuMemBackend.preserves_communicators``), so a tensor-parallel worker asleep still holds NCCL's buffers, some of
them mapped from the other workers. ``ncclCommSuspend(comm, NCCL_SUSPEND_MEM)`` (NCCL 2.29.7 and later) releases
what NCCL can release and ``ncclCommResume`` brings it back, with the same communicator handle, so CUDA graphs that
captured it keep their handle (whether they keep working is for a multi-GPU run to show: docs/tensor-parallel.md).

Both calls hold a barrier across the ranks: every worker must call them at once, on its communicators in the same
order (``collective_rpc`` reaches every worker at once; the groups go by name). Each call is bounded: one that does
not return in time is an error, and the caller ends the server (a rank stuck in NCCL cannot be freed).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

from ..errors import StasisEngineError

SUSPEND_MEM = 0x01  # NCCL_SUSPEND_MEM in nccl.h: release the communicator's dynamic allocations


def live_communicators(parallel_state: Any) -> list[tuple[str, Any]]:
    """(group name, PyNcclCommunicator) of every vLLM group with a live NCCL communicator, by group name.
    ``parallel_state`` is vllm.distributed.parallel_state, whose ``_groups`` holds a weak reference to each group."""
    out: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for name, ref in sorted(getattr(parallel_state, "_groups", {}).items()):
        group = ref()
        comm = getattr(getattr(group, "device_communicator", None), "pynccl_comm", None)
        if comm is None or getattr(comm, "disabled", True) or id(comm) in seen:
            continue
        seen.add(id(comm))
        out.append((name, comm))
    return out


def suspend(parallel_state: Any, timeout_s: float) -> dict[str, Any]:
    """Suspends every live communicator; on a failure those already suspended are resumed before the error."""
    comms = live_communicators(parallel_state)
    if not comms:
        return {"communicators": 0, "groups": []}
    fn = _function(comms[0][1], "ncclCommSuspend", [ctypes.c_void_p, ctypes.c_int])
    done: list[tuple[str, Any]] = []
    try:
        for name, comm in comms:
            _call(comm, f"ncclCommSuspend of {name}", _bind(fn, comm.comm, SUSPEND_MEM), timeout_s)
            done.append((name, comm))
    except StasisEngineError:
        if done:  # invariant: a failed suspend leaves none of this worker's communicators suspended, where it can
            resume_fn = _function(comms[0][1], "ncclCommResume", [ctypes.c_void_p])
            for name, comm in reversed(done):
                try:
                    _call(comm, f"ncclCommResume of {name}", _bind(resume_fn, comm.comm), timeout_s)
                except StasisEngineError:
                    pass  # the original error is the one to report; the capture ends this server anyway
        raise
    return {"communicators": len(done), "groups": [name for name, _ in done]}


def resume(parallel_state: Any, timeout_s: float) -> dict[str, Any]:
    comms = live_communicators(parallel_state)
    if not comms:
        return {"communicators": 0, "groups": []}
    fn = _function(comms[0][1], "ncclCommResume", [ctypes.c_void_p])
    for name, comm in comms:
        _call(comm, f"ncclCommResume of {name}", _bind(fn, comm.comm), timeout_s)
    return {"communicators": len(comms), "groups": [name for name, _ in comms]}


def _function(comm: Any, name: str, argtypes: list[Any]) -> Any:
    """The NCCL entry point from the library vLLM loaded (``comm.nccl.lib``), or why there is none."""
    lib = comm.nccl.lib
    fn = getattr(lib, name, None)
    if fn is None:
        raise StasisEngineError(
            "nccl_suspend_unsupported",
            f"the NCCL vLLM loaded ({_version(comm)}) has no {name}",
            hint="NCCL 2.29.7 or later has it (VLLM_NCCL_SO_PATH names the library vLLM loads)",
        )
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


def _bind(fn: Any, comm: Any, *args: int) -> Callable[[], int]:
    """The call of ``fn`` on the communicator ``comm``: vLLM keeps it as its ``ncclComm_t``, a ``ctypes.c_void_p``
    (which ``c_void_p()`` refuses to wrap again); a plain address is wrapped."""
    handle = comm if isinstance(comm, ctypes.c_void_p) else ctypes.c_void_p(int(comm))
    return lambda: int(fn(handle, *args))


def _call(comm: Any, what: str, call: Callable[[], int], timeout_s: float) -> None:
    result: list[int | BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as e:  # noqa: BLE001  (handed to the caller's thread)
            result.append(e)

    # A daemon thread: a call stuck in NCCL's barrier (another rank never came) cannot hold the process's exit.
    thread = threading.Thread(target=run, name=f"stasis-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not result:
        raise StasisEngineError(
            "nccl_timeout",
            f"{what} did not return within {timeout_s:g} s",
            hint="every worker must take part; see the server's log for a worker that did not",
        )
    out = result[0]
    if isinstance(out, BaseException):
        raise StasisEngineError("nccl_error", f"{what} failed: {out}") from out
    if out != 0:
        raise StasisEngineError("nccl_error", f"{what} failed: {_error_string(comm, out)} ({out})")


def _version(comm: Any) -> str:
    try:
        return f"NCCL {comm.nccl.ncclGetVersion()}"
    except Exception:  # noqa: BLE001  (only for the message)
        return "NCCL of unknown version"


def _error_string(comm: Any, code: int) -> str:
    try:
        return str(comm.nccl.ncclGetErrorString(code))
    except Exception:  # noqa: BLE001  (only for the message)
        return "NCCL error"
