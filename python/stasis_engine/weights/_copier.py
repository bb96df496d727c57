"""Where loaded bytes go: a CUDA device (async copies on our own stream) or host memory (memmove).

The load pipelines only talk to a Copier, so the same pipeline code runs on the GPU and, in CI, on the CPU.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

from . import _libc


class Copier(Protocol):
    kind: str

    def thread_init(self) -> None: ...
    def alloc_staging(self, size: int) -> int: ...
    def free_staging(self, address: int, size: int) -> None: ...
    def copy(self, dst: int, src: int, size: int) -> None: ...
    def copy_to_host(self, dst: int, src: int, size: int) -> None: ...
    def record(self, slot: int) -> None: ...
    def wait(self, slot: int) -> None: ...
    def synchronize(self) -> None: ...
    def target_problem(self, address: int, size: int) -> str | None: ...
    def close(self) -> None: ...
    # For the C lanes loop (_native.py): its calls as (api, copy, record, sync, init, pin, unpin, stream sync,
    # init argument) or None (a runtime without them: the Python loop then), the stream, and one event per slot
    # (made now).
    def native_api(self) -> tuple[int, ...] | None: ...
    def stream_handle(self) -> int: ...
    def events(self, n: int) -> list[int]: ...
    def unpin(self, address: int) -> None: ...


class HostCopier:
    """Targets in host memory: copies are memmoves, events are no-ops."""

    kind = "cpu"

    def thread_init(self) -> None:
        pass

    def alloc_staging(self, size: int) -> int:
        return _libc.map_anonymous(size)

    def free_staging(self, address: int, size: int) -> None:
        _libc.unmap(address, size)

    def copy(self, dst: int, src: int, size: int) -> None:
        ctypes.memmove(dst, src, size)

    def copy_to_host(self, dst: int, src: int, size: int) -> None:
        ctypes.memmove(dst, src, size)

    def record(self, slot: int) -> None:
        pass

    def wait(self, slot: int) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def target_problem(self, address: int, size: int) -> str | None:
        return None

    def close(self) -> None:
        pass

    def native_api(self) -> tuple[int, ...] | None:
        return (2, 0, 0, 0, 0, 0, 0, 0, 0)  # memcpy, no events, nothing to pin

    def stream_handle(self) -> int:
        return 0

    def unpin(self, address: int) -> None:
        pass

    def events(self, n: int) -> list[int]:
        return [0] * n


class CudaCopier:
    """Targets on one GPU: host-to-device copies on a private non-blocking stream, one event per ring slot.

    Construction makes ``index`` the current device (restored by ``close``) and waits for the device to be
    idle, so no kernel still reads a target while we overwrite it (``synchronize=False``: a copier opened before it
    in the same load already did).
    """

    kind = "cuda"

    def __init__(self, index: int, rt: Any = None, synchronize: bool = True) -> None:
        from ._cudart import runtime

        self.rt = rt if rt is not None else runtime()
        self.index = index
        self._previous = self.rt.get_device()
        self.rt.set_device(index)
        self._events: dict[int, int] = {}
        self.stream = 0
        try:
            if synchronize:
                self.rt.device_synchronize()
            self.stream = self.rt.stream_create()
        except BaseException:
            self.rt.set_device(self._previous)
            raise

    def thread_init(self) -> None:
        # A pool thread must make our device current before any runtime call, or the runtime would
        # create a context on device 0 for it.
        self.rt.set_device(self.index)

    def alloc_staging(self, size: int) -> int:
        from ._cudart import HOST_REGISTER_PORTABLE

        address = _libc.map_anonymous(size, populate=True)
        try:
            self.rt.host_register(address, size, HOST_REGISTER_PORTABLE)
        except BaseException:
            _libc.unmap(address, size)
            raise
        return address

    def free_staging(self, address: int, size: int) -> None:
        try:
            self.rt.host_unregister(address)
        finally:
            _libc.unmap(address, size)

    def copy(self, dst: int, src: int, size: int) -> None:
        from ._cudart import MEMCPY_H2D

        self.rt.memcpy_async(dst, src, size, MEMCPY_H2D, self.stream)

    def copy_to_host(self, dst: int, src: int, size: int) -> None:
        from ._cudart import MEMCPY_D2H

        self.rt.memcpy(dst, src, size, MEMCPY_D2H)  # synchronous; used by dump only

    def record(self, slot: int) -> None:
        event = self._events.get(slot)
        if event is None:
            event = self._events[slot] = self.rt.event_create()
        self.rt.event_record(event, self.stream)

    def wait(self, slot: int) -> None:
        event = self._events.get(slot)
        if event is not None:
            self.rt.event_synchronize(event)

    def synchronize(self) -> None:
        self.rt.stream_synchronize(self.stream)

    def native_api(self) -> tuple[int, ...] | None:
        calls = getattr(self.rt, "native_api", None)
        return calls(self.index) if calls is not None else None

    def stream_handle(self) -> int:
        return self.stream

    def unpin(self, address: int) -> None:
        """Unlocks host memory a C lane pinned and could not unpin itself (_native.py)."""
        self.rt.host_unregister(address)

    def events(self, n: int) -> list[int]:
        for slot in range(n):
            if slot not in self._events:
                self._events[slot] = self.rt.event_create()
        return [self._events[slot] for slot in range(n)]

    def target_problem(self, address: int, size: int) -> str | None:
        from ._cudart import MEMORY_TYPE_DEVICE, MEMORY_TYPE_MANAGED

        for probe in (address, address + max(size, 1) - 1):
            found = self.rt.pointer_device(probe)
            if found is None or found[0] not in (MEMORY_TYPE_DEVICE, MEMORY_TYPE_MANAGED):
                return f"{probe:#x} is not mapped GPU memory"
            if found[1] != self.index:
                return f"{probe:#x} is memory of cuda:{found[1]}, not cuda:{self.index}"
        return None

    def close(self) -> None:
        # Invariant: nothing of ours outlives the load (the process is checkpointed later): the stream is
        # drained and destroyed, the events destroyed, the caller's current device restored.
        try:
            if self.stream:
                self.rt.stream_synchronize(self.stream)
        finally:
            for event in self._events.values():
                self.rt.event_destroy(event)
            self._events.clear()
            if self.stream:
                self.rt.stream_destroy(self.stream)
                self.stream = 0
            self.rt.set_device(self._previous)


def open_copier(kind: str, index: int | None, rt: Any = None, synchronize: bool = True) -> Copier:
    """A HostCopier for "cpu", a CudaCopier for "cuda" on ``rt`` (default: torch's runtime); close it in a finally.
    ``synchronize=False``: another copier of the same load already waited for the device to be idle."""
    return HostCopier() if kind == "cpu" else CudaCopier(index or 0, rt, synchronize)
