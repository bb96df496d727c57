"""``CudaArena``: GPU memory through the CUDA virtual-memory API, as vLLM's sleep-mode allocator does it.

    cuMemAddressReserve   once: the arena's addresses, kept for the life of the process
    cuMemCreate + cuMemMap + cuMemSetAccess   at start and at every wake: physical memory at those addresses
    cuMemUnmap + cuMemRelease   at sleep: the physical memory goes back to the driver, the addresses stay

GPU-only; imported lazily by the engine. Calls go through cuda-bindings (``cuda.bindings.driver``) on the
engine's main thread, where torch has already made the device's primary context current.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import StasisEngineError


def _driver() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError as e:  # pragma: no cover - GPU machines have it
        raise StasisEngineError(
            "cuda_vmm",
            "cuda-bindings is not installed (import cuda.bindings.driver failed)",
            "pip install cuda-bindings, or run with --device cpu",
        ) from e
    return driver


def _check(cu: Any, call: str, result: Any) -> Any:
    """cuda-bindings returns ``(CUresult, *values)``: raise on an error, else return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cu.CUresult.CUDA_SUCCESS:
        _, name = cu.cuGetErrorName(err)
        text = name.decode() if isinstance(name, bytes) else str(err)
        raise StasisEngineError(
            "cuda_vmm",
            f"{call} failed: {text}",
            "check free GPU memory (nvidia-smi) and that the device is not in MIG/MPS mode",
        )
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class _ArrayInterface:
    """The minimal ``__cuda_array_interface__`` torch.as_tensor needs to wrap memory it does not own."""

    def __init__(self, address: int, size: int) -> None:
        self.__cuda_array_interface__ = {
            "shape": (size,),
            "typestr": "|u1",
            "data": (address, False),
            "version": 2,
            "strides": None,
        }


class CudaArena:
    """``size`` bytes of device memory at a fixed virtual address on ``device_index``."""

    def __init__(self, name: str, size: int, device_index: int) -> None:
        cu = self._cu = _driver()
        _check(cu, "cuInit", cu.cuInit(0))
        self._ensure_context(device_index)
        self.name = name
        self.device_index = device_index
        prop = cu.CUmemAllocationProp()
        prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = device_index
        self._prop = prop
        gran = int(
            _check(
                cu,
                "cuMemGetAllocationGranularity",
                cu.cuMemGetAllocationGranularity(
                    prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_RECOMMENDED
                ),
            )
        )
        self.size = max((size + gran - 1) // gran * gran, gran)
        ptr = _check(cu, "cuMemAddressReserve", cu.cuMemAddressReserve(self.size, gran, cu.CUdeviceptr(0), 0))
        self.address = int(ptr)
        self._handle: Any = None
        self.mapped = False
        self.restore()
        # Wrapped once, while mapped (torch asks the driver which device the pointer belongs to); the tensor
        # outlives every sleep, since the address does.
        self._tensor = torch.as_tensor(_ArrayInterface(self.address, self.size), device=f"cuda:{device_index}")
        if self._tensor.data_ptr() != self.address:
            raise StasisEngineError(
                "cuda_vmm", f"arena {name}: torch wrapped {self._tensor.data_ptr():#x}, expected {self.address:#x}"
            )

    def _ensure_context(self, device_index: int) -> None:
        cu = self._cu
        ctx = _check(cu, "cuCtxGetCurrent", cu.cuCtxGetCurrent())
        if int(ctx) != 0:
            return
        dev = _check(cu, "cuDeviceGet", cu.cuDeviceGet(device_index))
        primary = _check(cu, "cuDevicePrimaryCtxRetain", cu.cuDevicePrimaryCtxRetain(dev))
        _check(cu, "cuCtxSetCurrent", cu.cuCtxSetCurrent(primary))

    def tensor(self) -> torch.Tensor:
        return self._tensor

    def restore(self) -> None:
        if self.mapped:
            return
        cu = self._cu
        self._map(_check(cu, "cuMemCreate", cu.cuMemCreate(self.size, self._prop, 0)))

    def adopt(self, fd: int, size: int) -> None:
        """Maps memory another process filled (a POSIX file descriptor of a ``cuMemCreate`` allocation) at the
        arena's addresses instead of fresh memory: the weights stager's hand-off. The fd stays the caller's."""
        if self.mapped:
            raise StasisEngineError("cuda_vmm", f"arena {self.name} is mapped already", "adopt only while asleep")
        if size != self.size:
            raise StasisEngineError(
                "weights_layout",
                f"arena {self.name} has {self.size} bytes, the memory offered has {size}",
                "the stager was given another layout than this engine's",
            )
        cu = self._cu
        handle = _check(
            cu,
            "cuMemImportFromShareableHandle",
            cu.cuMemImportFromShareableHandle(
                fd, cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
            ),
        )
        self._map(handle)

    def _map(self, handle: Any) -> None:
        """Maps ``handle`` at the arena's addresses, read-write for the device; on failure releases it."""
        cu = self._cu
        try:
            _check(cu, "cuMemMap", cu.cuMemMap(cu.CUdeviceptr(self.address), self.size, 0, handle, 0))
        except StasisEngineError:
            cu.cuMemRelease(handle)  # invariant: a failed wake leaks no physical memory
            raise
        desc = cu.CUmemAccessDesc()
        desc.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        desc.location.id = self.device_index
        desc.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        try:
            _check(cu, "cuMemSetAccess", cu.cuMemSetAccess(cu.CUdeviceptr(self.address), self.size, [desc], 1))
        except StasisEngineError:
            cu.cuMemUnmap(cu.CUdeviceptr(self.address), self.size)
            cu.cuMemRelease(handle)
            raise
        self._handle = handle
        self.mapped = True

    def release(self) -> None:
        if not self.mapped:
            return
        # Invariant: nothing queued on the GPU may touch the range once it is unmapped (that is a fatal fault).
        torch.cuda.synchronize(self.device_index)
        cu = self._cu
        _check(cu, "cuMemUnmap", cu.cuMemUnmap(cu.CUdeviceptr(self.address), self.size))
        _check(cu, "cuMemRelease", cu.cuMemRelease(self._handle))
        self._handle = None
        self.mapped = False
