"""The CUDA runtime through ctypes: the very libcudart torch already loaded, so contexts and streams are shared.

Why not torch: a raw GPU extent (vLLM's pool) has no tensor, and ctypes calls release the GIL, so host
registration can run on many threads. Why not another libcudart or the driver API: a second runtime copy or
a thread without the right current context is how vLLM's own attempts failed (see vllm/device_allocator/cumem.py).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

from ..errors import StasisEngineError

MEMCPY_H2D = 1
MEMCPY_D2H = 2
HOST_REGISTER_PORTABLE = 0x01
EVENT_DISABLE_TIMING = 0x02
STREAM_NON_BLOCKING = 0x01
MEMORY_TYPE_DEVICE = 2
MEMORY_TYPE_MANAGED = 3

_c = ctypes
_vp, _sz, _int, _uint = _c.c_void_p, _c.c_size_t, _c.c_int, _c.c_uint


class _PointerAttributes(ctypes.Structure):
    # cudaPointerAttributes (CUDA >= 11); the padding leaves room should a later runtime append fields.
    _fields_ = [
        ("type", _int),
        ("device", _int),
        ("devicePointer", _vp),
        ("hostPointer", _vp),
        ("_pad", _c.c_long * 16),
    ]


_SIGNATURES: dict[str, list[Any]] = {
    "cudaGetLastError": [],
    "cudaSetDevice": [_int],
    "cudaGetDevice": [_c.POINTER(_int)],
    "cudaDeviceSynchronize": [],
    "cudaHostRegister": [_vp, _sz, _uint],
    "cudaHostUnregister": [_vp],
    "cudaMemcpy": [_vp, _vp, _sz, _int],
    "cudaMemcpyAsync": [_vp, _vp, _sz, _int, _vp],
    "cudaStreamCreateWithFlags": [_c.POINTER(_vp), _uint],
    "cudaStreamDestroy": [_vp],
    "cudaStreamSynchronize": [_vp],
    "cudaEventCreateWithFlags": [_c.POINTER(_vp), _uint],
    "cudaEventRecord": [_vp, _vp],
    "cudaEventSynchronize": [_vp],
    "cudaEventDestroy": [_vp],
    "cudaPointerGetAttributes": [_c.POINTER(_PointerAttributes), _vp],
}


class CudaRuntime:
    """Typed wrappers: each returns normally or raises StasisEngineError("cuda_error", ...)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path)
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.argtypes = argtypes
            fn.restype = _int
        self._lib.cudaGetErrorName.argtypes = [_int]
        self._lib.cudaGetErrorName.restype = _c.c_char_p

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            # Clear the runtime's "last error" so torch does not trip over our failure later.
            self._lib.cudaGetLastError()
            name = (self._lib.cudaGetErrorName(rc) or b"?").decode()
            raise StasisEngineError("cuda_error", f"{what} failed: {name} ({rc})", details={"cuda_error": rc})

    def set_device(self, index: int) -> None:
        self._check(self._lib.cudaSetDevice(index), f"cudaSetDevice({index})")

    def get_device(self) -> int:
        out = _int(-1)
        self._check(self._lib.cudaGetDevice(_c.byref(out)), "cudaGetDevice")
        return out.value

    def device_synchronize(self) -> None:
        self._check(self._lib.cudaDeviceSynchronize(), "cudaDeviceSynchronize")

    def host_register(self, address: int, size: int, flags: int) -> None:
        self._check(self._lib.cudaHostRegister(address, size, flags), f"cudaHostRegister({address:#x}, {size})")

    def host_unregister(self, address: int) -> None:
        self._check(self._lib.cudaHostUnregister(address), f"cudaHostUnregister({address:#x})")

    def memcpy(self, dst: int, src: int, size: int, kind: int) -> None:
        self._check(self._lib.cudaMemcpy(dst, src, size, kind), f"cudaMemcpy({dst:#x} <- {src:#x}, {size})")

    def memcpy_async(self, dst: int, src: int, size: int, kind: int, stream: int) -> None:
        rc = self._lib.cudaMemcpyAsync(dst, src, size, kind, stream)
        if rc:
            self._check(rc, f"cudaMemcpyAsync({dst:#x} <- {src:#x}, {size})")

    def stream_create(self) -> int:
        out = _vp()
        self._check(self._lib.cudaStreamCreateWithFlags(_c.byref(out), STREAM_NON_BLOCKING), "cudaStreamCreate")
        return int(out.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self._check(self._lib.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def stream_synchronize(self, stream: int) -> None:
        self._check(self._lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def event_create(self) -> int:
        out = _vp()
        self._check(self._lib.cudaEventCreateWithFlags(_c.byref(out), EVENT_DISABLE_TIMING), "cudaEventCreate")
        return int(out.value or 0)

    def event_record(self, event: int, stream: int) -> None:
        self._check(self._lib.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: int) -> None:
        self._check(self._lib.cudaEventSynchronize(event), "cudaEventSynchronize")

    def event_destroy(self, event: int) -> None:
        self._check(self._lib.cudaEventDestroy(event), "cudaEventDestroy")

    def native_api(self, index: int) -> tuple[int, ...]:
        """The calls the C lanes loop makes (_lanes.c, api 0), as addresses in this very library."""
        names = (
            "cudaMemcpyAsync",
            "cudaEventRecord",
            "cudaEventSynchronize",
            "cudaSetDevice",
            "cudaHostRegister",
            "cudaHostUnregister",
            "cudaStreamSynchronize",
        )
        return (0, *[int(_c.cast(getattr(self._lib, n), _vp).value or 0) for n in names], index)

    def pointer_device(self, address: int) -> tuple[int, int] | None:
        """``(memory type, device)`` of a pointer, or None when the runtime does not know it."""
        attrs = _PointerAttributes()
        rc = self._lib.cudaPointerGetAttributes(_c.byref(attrs), address)
        if rc != 0:
            self._lib.cudaGetLastError()
            return None
        return attrs.type, attrs.device


@lru_cache(maxsize=1)
def runtime() -> CudaRuntime:
    """The process's CUDA runtime (initializes torch's CUDA first)."""
    import torch

    if not torch.cuda.is_available():
        raise StasisEngineError("cuda_error", "CUDA is not available in this process", hint="use CPU targets")
    torch.cuda.init()
    path = _loaded_libcudart()
    if path is None:
        raise StasisEngineError(
            "cuda_error",
            "torch's libcudart is not among the loaded libraries (/proc/self/maps)",
            hint="this torch build links the CUDA runtime statically; stasis needs the dynamic one",
        )
    return CudaRuntime(path)


def _loaded_libcudart() -> str | None:
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and "/libcudart.so" in parts[-1]:
                return parts[-1]
    return None
