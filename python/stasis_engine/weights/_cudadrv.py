"""The CUDA driver API through ctypes, for a process without torch: the weights stager (``stage.py``).

Two parts: ``DriverRuntime`` offers the calls the load pipelines make of ``CudaRuntime`` (``_cudart.py``) on
the device's primary context, so the same pipeline code fills memory in a process that never imports torch
(importing torch costs a second; the stager must be filling while CRIU restores). ``ExportableMemory`` is
device memory created with a POSIX file-descriptor handle, mapped at an address of this process, that
another process can import (``cuMemImportFromShareableHandle``) and map at its own addresses.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from ..errors import StasisEngineError

HOST_REGISTER_PORTABLE = 0x01
HANDLE_TYPE_POSIX_FD = 1
_ALLOCATION_PINNED = 1
_LOCATION_DEVICE = 1
_ACCESS_READWRITE = 3
_GRANULARITY_RECOMMENDED = 1
_STREAM_NON_BLOCKING = 0x01
_EVENT_DISABLE_TIMING = 0x02

_c = ctypes
_vp, _sz, _int, _uint, _u64 = _c.c_void_p, _c.c_size_t, _c.c_int, _c.c_uint, _c.c_uint64


class _Location(ctypes.Structure):
    _fields_ = [("type", _int), ("id", _int)]


class _AllocationProp(ctypes.Structure):
    # CUmemAllocationProp: type, requestedHandleTypes, location, win32HandleMetaData, allocFlags (8 bytes).
    _fields_ = [
        ("type", _int),
        ("requestedHandleTypes", _int),
        ("location", _Location),
        ("win32HandleMetaData", _vp),
        ("allocFlags", _c.c_uint8 * 8),
    ]


class _AccessDesc(ctypes.Structure):
    _fields_ = [("location", _Location), ("flags", _int)]


_SIGNATURES: dict[str, list[Any]] = {
    "cuInit": [_uint],
    "cuDeviceGetCount": [_c.POINTER(_int)],
    "cuDeviceGet": [_c.POINTER(_int), _int],
    "cuDeviceGetUuid_v2": [_c.c_char * 16, _int],
    "cuDevicePrimaryCtxRetain": [_c.POINTER(_vp), _int],
    "cuDevicePrimaryCtxRelease_v2": [_int],
    "cuCtxSetCurrent": [_vp],
    "cuCtxSynchronize": [],
    "cuMemGetInfo_v2": [_c.POINTER(_sz), _c.POINTER(_sz)],
    "cuMemGetAllocationGranularity": [_c.POINTER(_sz), _c.POINTER(_AllocationProp), _int],
    "cuMemCreate": [_c.POINTER(_u64), _sz, _c.POINTER(_AllocationProp), _u64],
    "cuMemRelease": [_u64],
    "cuMemAddressReserve": [_c.POINTER(_u64), _sz, _sz, _u64, _u64],
    "cuMemAddressFree": [_u64, _sz],
    "cuMemMap": [_u64, _sz, _sz, _u64, _u64],
    "cuMemUnmap": [_u64, _sz],
    "cuMemSetAccess": [_u64, _sz, _c.POINTER(_AccessDesc), _sz],
    "cuMemExportToShareableHandle": [_vp, _u64, _int, _u64],
    "cuMemImportFromShareableHandle": [_c.POINTER(_u64), _vp, _int],
    "cuMemHostRegister_v2": [_vp, _sz, _uint],
    "cuMemHostAlloc": [_c.POINTER(_vp), _sz, _uint],
    "cuMemFreeHost": [_vp],
    "cuMemHostUnregister": [_vp],
    "cuMemcpyHtoDAsync_v2": [_u64, _vp, _sz, _vp],
    "cuStreamCreate": [_c.POINTER(_vp), _uint],
    "cuStreamDestroy_v2": [_vp],
    "cuStreamSynchronize": [_vp],
    "cuEventCreate": [_c.POINTER(_vp), _uint],
    "cuEventRecord": [_vp, _vp],
    "cuEventSynchronize": [_vp],
    "cuEventDestroy_v2": [_vp],
}


def format_uuid(raw: bytes) -> str:
    """16 bytes as nvidia-smi and /proc/driver/nvidia write a GPU's UUID: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."""
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _bare(uuid: str) -> str:
    return uuid.strip().lower().removeprefix("gpu-")


class Driver:
    """Typed wrappers over libcuda: each returns normally or raises StasisEngineError("cuda_error", ...)."""

    def __init__(self, path: str = "libcuda.so.1") -> None:
        try:
            self._lib = ctypes.CDLL(path)
        except OSError as e:
            raise StasisEngineError(
                "cuda_error", f"cannot load the CUDA driver ({path}): {e}", "run where the NVIDIA driver is installed"
            ) from e
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.argtypes = argtypes
            fn.restype = _int
        self._lib.cuGetErrorName.argtypes = [_int, _c.POINTER(_c.c_char_p)]
        self._lib.cuGetErrorName.restype = _int

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            name = _c.c_char_p()
            self._lib.cuGetErrorName(rc, _c.byref(name))
            text = (name.value or b"?").decode()
            raise StasisEngineError("cuda_error", f"{what} failed: {text} ({rc})", details={"cuda_error": rc})

    def call(self, name: str, *args: Any) -> None:
        self.check(getattr(self._lib, name)(*args), name)

    def device_by_uuid(self, uuid: str) -> int:
        """The driver's ordinal of the GPU with this UUID (or index, given as digits)."""
        self.call("cuInit", 0)
        count = _int(0)
        self.call("cuDeviceGetCount", _c.byref(count))
        seen = []
        for ordinal in range(count.value):
            dev = _int(0)
            self.call("cuDeviceGet", _c.byref(dev), ordinal)
            raw = (_c.c_char * 16)()
            self.call("cuDeviceGetUuid_v2", raw, dev.value)
            seen.append(format_uuid(bytes(raw)))
            if _bare(seen[-1]) == _bare(uuid) or str(ordinal) == uuid:
                return dev.value
        raise StasisEngineError(
            "gpu_unavailable",
            f"no GPU {uuid} here (the driver sees {', '.join(seen) or 'none'})",
            "name a GPU by the UUID nvidia-smi -L lists",
        )


class DriverRuntime:
    """What the load pipelines call of ``CudaRuntime``, on one device's primary context (``_cudart.py``)."""

    def __init__(self, drv: Driver, device: int) -> None:
        self.drv = drv
        self.device = device
        ctx = _vp()
        drv.call("cuDevicePrimaryCtxRetain", _c.byref(ctx), device)
        self.ctx = ctx.value

    def set_device(self, index: int) -> None:
        self.drv.call("cuCtxSetCurrent", self.ctx)

    def get_device(self) -> int:
        return self.device

    def device_synchronize(self) -> None:
        self.drv.call("cuCtxSynchronize")

    def host_register(self, address: int, size: int, flags: int) -> None:
        self.drv.check(
            self.drv._lib.cuMemHostRegister_v2(address, size, flags), f"cuMemHostRegister({address:#x}, {size})"
        )

    def host_unregister(self, address: int) -> None:
        self.drv.call("cuMemHostUnregister", address)

    def memcpy_async(self, dst: int, src: int, size: int, kind: int, stream: int) -> None:
        rc = self.drv._lib.cuMemcpyHtoDAsync_v2(dst, src, size, stream)
        if rc:
            self.drv.check(rc, f"cuMemcpyHtoDAsync({dst:#x} <- {src:#x}, {size})")

    def memcpy(self, dst: int, src: int, size: int, kind: int) -> None:
        raise StasisEngineError("bad_argument", "the stager only copies to the GPU")

    def stream_create(self) -> int:
        out = _vp()
        self.drv.call("cuStreamCreate", _c.byref(out), _STREAM_NON_BLOCKING)
        return int(out.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self.drv.call("cuStreamDestroy_v2", stream)

    def stream_synchronize(self, stream: int) -> None:
        self.drv.call("cuStreamSynchronize", stream)

    def event_create(self) -> int:
        out = _vp()
        self.drv.call("cuEventCreate", _c.byref(out), _EVENT_DISABLE_TIMING)
        return int(out.value or 0)

    def event_record(self, event: int, stream: int) -> None:
        self.drv.call("cuEventRecord", event, stream)

    def event_synchronize(self, event: int) -> None:
        self.drv.call("cuEventSynchronize", event)

    def event_destroy(self, event: int) -> None:
        self.drv.call("cuEventDestroy_v2", event)

    def pointer_device(self, address: int) -> tuple[int, int] | None:
        return None  # targets are the stager's own allocation, checked when it was made

    def native_api(self, index: int) -> tuple[int, ...]:
        """The calls the C lanes loop makes (_lanes.c, api 1): the driver's, on this primary context."""
        names = (
            "cuMemcpyHtoDAsync_v2",
            "cuEventRecord",
            "cuEventSynchronize",
            "cuCtxSetCurrent",
            "cuMemHostRegister_v2",
            "cuMemHostUnregister",
            "cuStreamSynchronize",
        )
        lib = self.drv._lib
        return (1, *[int(_c.cast(getattr(lib, n), _vp).value or 0) for n in names], int(self.ctx or 0))

    def host_alloc(self, size: int) -> int:
        """Pinned host memory usable from every context (the keeper's copies of weights files)."""
        out = _vp()
        self.drv.check(
            self.drv._lib.cuMemHostAlloc(_c.byref(out), size, HOST_REGISTER_PORTABLE), f"cuMemHostAlloc({size})"
        )
        return int(out.value or 0)

    def host_free(self, address: int) -> None:
        self.drv.call("cuMemFreeHost", address)

    def exportable(self, size: int, pieces: list[int] | None = None) -> ExportableMemory:
        """``size`` bytes of device memory on this device that another process can import (``ExportableMemory``),
        as one allocation or as ``pieces`` (their sizes, adding up to ``size``), mapped back to back."""
        return ExportableMemory(self, size, pieces or [size])

    def free_bytes(self) -> int:
        free, total = _sz(0), _sz(0)
        self.drv.call("cuMemGetInfo_v2", _c.byref(free), _c.byref(total))
        return free.value

    def release(self) -> None:
        self.drv.call("cuDevicePrimaryCtxRelease_v2", self.device)


def _access(device: int) -> _AccessDesc:
    desc = _AccessDesc()
    desc.location.type = _LOCATION_DEVICE
    desc.location.id = device
    desc.flags = _ACCESS_READWRITE
    return desc


class ExportableMemory:
    """``size`` bytes of device memory, mapped here at ``address``, exportable as file descriptors: one allocation
    per piece, the pieces mapped back to back, so the stager fills them as one range and the engine maps each at its
    own address."""

    def __init__(self, rt: DriverRuntime, size: int, pieces: list[int]) -> None:
        drv = self._drv = rt.drv
        prop = _AllocationProp()
        prop.type = _ALLOCATION_PINNED
        prop.requestedHandleTypes = HANDLE_TYPE_POSIX_FD
        prop.location.type = _LOCATION_DEVICE
        prop.location.id = rt.device
        gran = _sz(0)
        drv.call("cuMemGetAllocationGranularity", _c.byref(gran), _c.byref(prop), _GRANULARITY_RECOMMENDED)
        if sum(pieces) != size or any(p <= 0 or p % gran.value for p in pieces):
            raise StasisEngineError(
                "weights_layout",
                f"allocations of {pieces[:4]}{'...' if len(pieces) > 4 else ''}"
                f" bytes (total {size}) are not all multiples of the GPU's granularity "
                f"({gran.value})",
                "the layout must come from the engine's allocations",
            )
        self.size = size
        self.address = 0
        self.handles: list[int] = []
        self._mapped: list[tuple[int, int]] = []
        try:
            va = _u64(0)
            drv.call("cuMemAddressReserve", _c.byref(va), size, gran.value, 0, 0)
            self.address = va.value
            offset = 0
            for piece in pieces:
                handle = _u64(0)
                drv.call("cuMemCreate", _c.byref(handle), piece, _c.byref(prop), 0)
                self.handles.append(handle.value)
                drv.call("cuMemMap", self.address + offset, piece, 0, handle.value, 0)
                self._mapped.append((self.address + offset, piece))
                offset += piece
            desc = _access(rt.device)
            drv.call("cuMemSetAccess", self.address, size, _c.byref(desc), 1)
        except BaseException:
            self.close()
            raise

    def export_fds(self) -> list[int]:
        """A new file descriptor for each allocation, in order; the caller closes them (the memory lives while any
        holder does)."""
        fds: list[int] = []
        try:
            for handle in self.handles:
                fd = _int(-1)
                self._drv.call("cuMemExportToShareableHandle", _c.addressof(fd), handle, HANDLE_TYPE_POSIX_FD, 0)
                fds.append(fd.value)
        except BaseException:
            for fd_ in fds:
                os.close(fd_)
            raise
        return fds

    def close(self) -> None:
        """Unmaps and releases this process's hold; an importer keeps the memory alive."""
        while self._mapped:
            self._drv.call("cuMemUnmap", *self._mapped.pop())
        if self.address:
            self._drv.call("cuMemAddressFree", self.address, self.size)
            self.address = 0
        while self.handles:
            self._drv.call("cuMemRelease", self.handles.pop())


def map_imported(drv: Driver, fd: int, address: int, size: int, device: int) -> int:
    """Imports an allocation another process exported (a POSIX file descriptor; it stays the caller's) and maps it
    read-write at ``address`` (an address range this process reserved and left unmapped). Returns the allocation's
    handle here, which the caller releases after unmapping; on failure nothing stays mapped or held."""
    handle = _u64(0)
    drv.call("cuMemImportFromShareableHandle", _c.byref(handle), _vp(fd), HANDLE_TYPE_POSIX_FD)
    try:
        drv.call("cuMemMap", address, size, 0, handle.value, 0)
        try:
            desc = _access(device)
            drv.call("cuMemSetAccess", address, size, _c.byref(desc), 1)
        except BaseException:
            drv.call("cuMemUnmap", address, size)
            raise
    except BaseException:
        drv.call("cuMemRelease", handle.value)
        raise
    return handle.value
