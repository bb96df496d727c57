"""Fast weights on a real GPU: bit-exact refill of existing GPU tensors and raw extents, every method.

Skipped without CUDA. Run on the GPU machine:  cd python && python3 -m pytest tests/gpu/test_weights_gpu.py -v
The VMM tests build memory the way vLLM's sleep-mode pool does (cuMemAddressReserve + cuMemCreate + cuMemMap),
unmap it like sleep level 2 does, and check the loader refuses until it is mapped again (wake).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import Extent, dump, load_into, read_header

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

METHODS = ["auto", "pinned-ring", "lanes", "direct"]
SMALL = {"ring_slots": 3, "slot_mb": 1, "read_mb": 1, "lane_mb": 1}


def rand(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator(device="cuda").manual_seed(seed)
    if dtype.is_floating_point and dtype.itemsize == 2:
        return torch.randint(-(2**15), 2**15 - 1, shape, dtype=torch.int16, device="cuda", generator=g).view(dtype)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=dtype, device="cuda", generator=g)
    return torch.randint(-(2**31), 2**31 - 1, shape, dtype=torch.int32, device="cuda", generator=g).view(dtype)


def gpu_model() -> dict[str, torch.Tensor]:
    return {
        "embed": rand((20_000, 2048), torch.bfloat16, 1),  # 78 MiB: crosses 64 MiB registration windows
        "q_proj": rand((3072, 1024), torch.bfloat16, 2),
        "k_proj": rand((1000, 333), torch.float16, 3),  # odd byte size
        "norm": rand((3072,), torch.float32, 4),
        "bytes": rand((4097,), torch.uint8, 5),
        "empty": torch.empty(0, device="cuda"),
    }


def poisoned(src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in src.items():
        t = torch.empty_like(v)
        if t.numel():
            t.view(torch.uint8).view(-1).fill_(0xA5)
        out[k] = t
    return out


def exact(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.numel() == 0:
        return b.numel() == 0
    return bool(torch.equal(a.view(torch.uint8), b.view(torch.uint8)))


@pytest.fixture(scope="module")
def src() -> dict[str, torch.Tensor]:
    return gpu_model()


@pytest.fixture(scope="module")
def wfile(tmp_path_factory: pytest.TempPathFactory, src: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("gpu") / "w.stasisw"
    dump(src, path)
    return path


def test_gpu_dump_matches_host_bytes(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    raw = wfile.read_bytes()
    for e in read_header(wfile).extents:
        want = src[e.name].view(torch.uint8).cpu().numpy().tobytes() if e.size else b""  # type: ignore[index]
        assert raw[e.offset : e.offset + e.size] == want, e.name


@pytest.mark.parametrize("geometry", ["default", "small"])
@pytest.mark.parametrize("method", METHODS)
def test_gpu_tensors_refill_bit_exact(wfile: Path, src: dict[str, torch.Tensor], method: str, geometry: str) -> None:
    targets = poisoned(src)
    stats = load_into(targets, wfile, method=method, **(SMALL if geometry == "small" else {}))
    assert all(exact(targets[k], src[k]) for k in src), stats
    assert stats.bytes == sum(v.numel() * v.element_size() for v in src.values())


@pytest.mark.parametrize("method", METHODS)
def test_gpu_verify_then_load(wfile: Path, src: dict[str, torch.Tensor], method: str) -> None:
    targets = poisoned(src)
    stats = load_into(targets, wfile, method=method, verify=True)
    assert "verify" in stats.stages and all(exact(targets[k], src[k]) for k in src)


def test_gpu_arena_views_are_one_copy(tmp_path: Path) -> None:
    arena = rand((8 << 20,), torch.uint8, 9)
    views = {f"v{i}": arena[i << 20 : (i + 1) << 20] for i in range(8)}
    path = tmp_path / "arena.stasisw"
    dump(views, path)
    want = arena.clone()
    arena.fill_(0)
    stats = load_into(views, path, method="pinned-ring")
    assert torch.equal(arena, want) and stats.copies == 1


@pytest.mark.parametrize("method", METHODS)
def test_gpu_raw_extents_refill_bit_exact(tmp_path: Path, method: str) -> None:
    buffers = [rand((n,), torch.uint8, 20 + i) for i, n in enumerate((2 << 20, 20 << 20, 4096 * 3 + 17))]
    extents = [Extent(b.data_ptr(), b.numel()) for b in buffers]
    path = tmp_path / "pool.stasisw"
    dump(extents, path, device=f"cuda:{torch.cuda.current_device()}")
    want = [b.clone() for b in buffers]
    for b in buffers:
        b.fill_(0xA5)
    load_into(extents, path, method=method, **SMALL)
    assert all(torch.equal(b, w) for b, w in zip(buffers, want, strict=True))


def test_gpu_validation_error_writes_nothing(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    targets = poisoned(src)
    targets["norm"] = torch.full((3072,), 7, dtype=torch.int32, device="cuda")  # same size, other dtype
    before = {k: v.clone() for k, v in targets.items()}
    with pytest.raises(StasisEngineError) as e:
        load_into(targets, wfile)
    assert e.value.code == "weights_target" and "'norm'" in e.value.message
    assert all(exact(targets[k], before[k]) for k in targets)


def test_gpu_host_address_is_not_a_gpu_extent(tmp_path: Path) -> None:
    host = torch.randint(0, 256, (8192,), dtype=torch.uint8)
    path = tmp_path / "host.stasisw"
    dump([Extent(host.data_ptr(), 8192)], path, device="cpu")
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(host.data_ptr(), 8192)], path, device="cuda")
    assert e.value.code == "weights_target" and "not mapped GPU memory" in e.value.message


def test_gpu_caller_state_is_kept(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    device = torch.cuda.current_device()
    targets = poisoned(src)
    load_into(targets, wfile)
    assert torch.cuda.current_device() == device
    x = torch.ones(10, device="cuda") * 2  # torch still works on the default stream afterwards
    assert float(x.sum()) == 20.0


# --- VMM memory, as vLLM's CuMemAllocator makes it ------------------------------------------------------


class VmmBlock:
    """cuMemAddressReserve + cuMemCreate + cuMemMap + cuMemSetAccess; unmap()/map() like sleep/wake."""

    def __init__(self, size: int) -> None:
        from cuda.bindings import driver as cu

        self.cu = cu
        torch.cuda.init()
        torch.zeros(1, device="cuda")  # make the primary context current on this thread
        self.dev = torch.cuda.current_device()
        prop = cu.CUmemAllocationProp()
        prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = self.dev
        self.prop = prop
        gran = self._ok(
            cu.cuMemGetAllocationGranularity(prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM)
        )
        self.size = -(-size // int(gran)) * int(gran)
        self.ptr = self._ok(cu.cuMemAddressReserve(self.size, 0, 0, 0))
        self.handle = None
        self.map()

    def _ok(self, result):  # type: ignore[no-untyped-def]
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"CUDA driver call failed: {err}")
        return rest[0] if rest else None

    @property
    def address(self) -> int:
        return int(self.ptr)

    def map(self) -> None:
        cu = self.cu
        self.handle = self._ok(cu.cuMemCreate(self.size, self.prop, 0))
        self._ok(cu.cuMemMap(self.ptr, self.size, 0, self.handle, 0))
        access = cu.CUmemAccessDesc()
        access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        access.location.id = self.dev
        access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        self._ok(cu.cuMemSetAccess(self.ptr, self.size, [access], 1))

    def unmap(self) -> None:
        self._ok(self.cu.cuMemUnmap(self.ptr, self.size))
        self._ok(self.cu.cuMemRelease(self.handle))
        self.handle = None

    def free(self) -> None:
        if self.handle is not None:
            self.unmap()
        self._ok(self.cu.cuMemAddressFree(self.ptr, self.size))


def _h2d(address: int, data: bytes) -> None:
    from stasis_engine.weights._cudart import MEMCPY_H2D, runtime

    buf = ctypes.create_string_buffer(data, len(data))
    runtime().memcpy(address, ctypes.addressof(buf), len(data), MEMCPY_H2D)


def _d2h(address: int, size: int) -> bytes:
    from stasis_engine.weights._cudart import MEMCPY_D2H, runtime

    buf = ctypes.create_string_buffer(size)
    runtime().memcpy(ctypes.addressof(buf), address, size, MEMCPY_D2H)
    return buf.raw


@pytest.fixture
def vmm_blocks() -> Iterator[list[VmmBlock]]:
    pytest.importorskip("cuda.bindings.driver")
    blocks = [VmmBlock(n) for n in (2 << 20, 6 << 20, 2 << 20)]
    try:
        yield blocks
    finally:
        for b in blocks:
            b.free()


@pytest.mark.parametrize("method", METHODS)
def test_gpu_vmm_pool_sleep_wake_refill(tmp_path: Path, vmm_blocks: list[VmmBlock], method: str) -> None:
    import os

    payloads = [os.urandom(b.size) for b in vmm_blocks]
    for b, p in zip(vmm_blocks, payloads, strict=True):
        _h2d(b.address, p)
    extents = [Extent(b.address, b.size) for b in vmm_blocks]
    path = tmp_path / "vmm.stasisw"
    dump(extents, path)
    for b in vmm_blocks:  # sleep level 2: physical memory released, addresses kept
        b.unmap()
    with pytest.raises(StasisEngineError) as e:
        load_into(extents, path, method=method)
    assert e.value.code == "weights_target" and "not mapped" in e.value.message and "wake_up" in (e.value.hint or "")
    for b in vmm_blocks:  # wake: new physical memory at the same addresses, contents undefined
        b.map()
        _h2d(b.address, b"\xa5" * b.size)
    load_into(extents, path, method=method)
    assert all(_d2h(b.address, b.size) == p for b, p in zip(vmm_blocks, payloads, strict=True))
