"""The vLLM worker extension, run against fakes of vLLM's allocator and worker (CI; vLLM is not installed).

The fakes mirror vllm/device_allocator/cumem.py: ``pointer_to_data[address] = AllocationData(handle, tag)``
with ``handle = (device, size, address, mem_handle)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.vllm import StasisWorkerExtension, _pool
from stasis_engine.weights import Extent, read_header


@dataclass
class FakeAllocationData:
    handle: tuple[int, int, int, int]
    tag: str
    cpu_backup_tensor: Any = None
    is_asleep: bool = False


class FakeAllocator:
    def __init__(self, buffers: list[torch.Tensor], tags: list[str]) -> None:
        self.pointer_to_data = {
            b.data_ptr(): FakeAllocationData((0, b.numel(), b.data_ptr(), 0), tag)
            for b, tag in zip(buffers, tags, strict=True)
        }


class FakeParallelConfig:
    def __init__(self, world_size: int) -> None:
        self.world_size = world_size


class FakeWorker(StasisWorkerExtension):
    """What vLLM does with --worker-extension-cls: the extension's methods on a worker with rank and device."""

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        self.rank = rank
        self.device = torch.device("cpu")
        self.parallel_config = FakeParallelConfig(world_size)


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeAllocator, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    buffers = [torch.randint(0, 256, (n,), dtype=torch.uint8, generator=g) for n in (2 << 20, 4 << 20, 1 << 20, 8192)]
    alloc = FakeAllocator(buffers, ["weights", "weights", "kv_cache", "weights"])
    monkeypatch.setattr(_pool, "allocator", lambda: alloc)
    return alloc, buffers


def test_vllm_ext_pool_extents_filter_by_tag(pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    alloc, buffers = pool
    ext = _pool.pool_extents(alloc.pointer_to_data)
    assert ext == sorted(Extent(b.data_ptr(), b.numel()) for i, b in enumerate(buffers) if i != 2)
    assert _pool.pool_extents(alloc.pointer_to_data, "kv_cache") == [Extent(buffers[2].data_ptr(), 1 << 20)]


def test_vllm_ext_format_path() -> None:
    assert _pool.format_path("/s/w-{rank}.stasisw", 3, 4) == "/s/w-3.stasisw"
    assert _pool.format_path("/s/w.stasisw", 0, 1) == "/s/w.stasisw"
    with pytest.raises(StasisEngineError) as e:
        _pool.format_path("/s/w.stasisw", 1, 2)
    assert e.value.code == "bad_argument" and "{rank}" in e.value.hint  # type: ignore[operator]
    with pytest.raises(StasisEngineError):
        _pool.format_path("", 0)


def test_vllm_ext_layout_digest_is_order_free() -> None:
    a = [Extent(0x1000, 10), Extent(0x9000, 20)]
    assert _pool.layout_digest(a) == _pool.layout_digest(a[::-1]) != _pool.layout_digest([Extent(0x1000, 11), a[1]])


def test_vllm_ext_dump_and_load_round_trip(tmp_path: Path, pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    _, buffers = pool
    worker = FakeWorker()
    want = [b.clone() for b in buffers]
    out = worker.stasis_dump_weights(str(tmp_path / "w-{rank}.stasisw"))
    assert out["ok"], out
    assert out["path"].endswith("w-0.stasisw") and out["count"] == 3
    assert read_header(out["path"]).meta["engine"] == "vllm"
    for b in buffers:
        b.fill_(0xA5)
    res = worker.stasis_load_weights(str(tmp_path / "w-{rank}.stasisw"), "pinned-ring", "true")
    assert res["ok"], res
    assert res["stats"]["bytes"] == (2 << 20) + (4 << 20) + 8192 and res["stats"]["method"] == "pinned-ring"
    for i in (0, 1, 3):
        assert torch.equal(buffers[i], want[i])
    assert bool((buffers[2] == 0xA5).all())  # the kv_cache pool is not touched


def test_vllm_ext_layout_reports_matches(tmp_path: Path, pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    worker = FakeWorker()
    path = str(tmp_path / "w.stasisw")
    assert worker.stasis_dump_weights(path)["ok"]
    layout = worker.stasis_weights_layout(path)
    assert layout["ok"] and layout["matches"] and layout["problems"] == []
    assert layout["extents"][0]["address"].startswith("0x") and layout["device"] == "cpu"
    assert worker.stasis_weights_layout()["digest"] == layout["digest"]


def test_vllm_ext_refuses_a_different_layout(tmp_path: Path, pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    alloc, buffers = pool
    worker = FakeWorker()
    path = str(tmp_path / "w.stasisw")
    assert worker.stasis_dump_weights(path)["ok"]
    # the live engine allocated one weights buffer elsewhere (another model, or another vLLM)
    moved = torch.zeros(8192, dtype=torch.uint8)
    del alloc.pointer_to_data[buffers[3].data_ptr()]
    alloc.pointer_to_data[moved.data_ptr()] = FakeAllocationData((0, 8192, moved.data_ptr(), 0), "weights")
    for b in buffers:
        b.fill_(0xA5)
    res = worker.stasis_load_weights(path)
    assert not res["ok"] and res["error"]["code"] == "weights_layout"
    assert "live weights layout differs" in res["error"]["message"] and "(and 1 more)" in res["error"]["message"]
    assert all(bool((b == 0xA5).all()) for b in buffers) and bool((moved == 0).all())
    assert worker.stasis_weights_layout(path)["matches"] is False


def test_vllm_ext_refuses_while_asleep(tmp_path: Path, pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    alloc, _ = pool
    worker = FakeWorker()
    path = str(tmp_path / "w.stasisw")
    assert worker.stasis_dump_weights(path)["ok"]
    for data in alloc.pointer_to_data.values():
        data.is_asleep = data.tag == "weights"
    res = worker.stasis_load_weights(path)
    assert not res["ok"] and res["error"]["code"] == "vllm_weights_asleep" and "wake_up" in res["error"]["hint"]


def test_vllm_ext_errors_are_results(tmp_path: Path, pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    worker = FakeWorker(rank=1, world_size=2)
    res = worker.stasis_load_weights(str(tmp_path / "missing-{rank}.stasisw"))
    assert res == {"ok": False, "rank": 1, "world_size": 2, "error": res["error"]}
    assert res["error"]["code"] == "weights_missing"
    assert "missing-1.stasisw" in res["error"]["message"]
    assert worker.stasis_dump_weights(str(tmp_path / "no-rank.stasisw"))["error"]["code"] == "bad_argument"
    assert worker.stasis_load_weights(str(tmp_path / "x-{rank}"), "warp")["error"]["code"] == "bad_argument"


class _Part:
    """One of vLLM's all-reduce objects: live unless ``disabled`` (vLLM's own verdict after its checks)."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled


class CudaCommunicator:
    """The shape of vLLM's CudaCommunicator (vllm/distributed/device_communicators/cuda_communicator.py)."""

    def __init__(self, **parts: _Part | None) -> None:
        for attr in ("ca_comm", "symm_mem_comm", "fi_ar_comm", "pynccl_comm"):
            setattr(self, attr, parts.get(attr))


class FakeParallelState:
    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def get_tp_group(self) -> Any:
        if self.comm is None:
            raise AssertionError("tensor model parallel group is not initialized")  # what vLLM's assert says
        return type("GroupCoordinator", (), {"device_communicator": self.comm})()


def test_vllm_ext_parallel_facts_read_the_live_all_reduce_paths() -> None:
    from stasis_engine.vllm._parallel import parallel_facts

    worker = FakeWorker(rank=1, world_size=2)
    worker.local_rank = 1  # type: ignore[attr-defined]
    worker.parallel_config.tensor_parallel_size = 2  # type: ignore[attr-defined]
    comm = CudaCommunicator(ca_comm=_Part(False), symm_mem_comm=_Part(True), pynccl_comm=_Part(False))
    env = {"NCCL_P2P_DISABLE": "1", "NCCL_DEBUG": "INFO"}
    facts = parallel_facts(worker, FakeParallelState(comm), env)
    assert facts["world_size"] == 2 and facts["tensor_parallel_size"] == 2 and facts["local_rank"] == 1
    assert facts["pipeline_parallel_size"] == 1 and facts["data_parallel_size"] == 1
    assert facts["all_reduce"] == {
        "communicator": "CudaCommunicator",
        "custom": True,
        "symm_mem": False,  # created, then disabled by vLLM (no multicast): nothing live
        "flashinfer": False,  # never created
        "pynccl": True,
    }
    assert facts["nccl_env"] == {"NCCL_P2P_DISABLE": "1"}
    # Before the model-parallel groups exist, or without vLLM: no communicator, nothing live.
    none = parallel_facts(worker, FakeParallelState(None), {})["all_reduce"]
    assert none["communicator"] is None and not any(v for k, v in none.items() if k != "communicator")


def test_vllm_ext_parallel_is_an_rpc_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # no vLLM here: the facts say no communicator
    res = FakeWorker(rank=0, world_size=2).stasis_parallel()
    assert res["ok"] and res["rank"] == 0 and res["world_size"] == 2
    assert res["all_reduce"]["communicator"] is None


def test_vllm_ext_trims_the_workers_host_memory() -> None:
    res = FakeWorker(rank=1, world_size=2).stasis_trim_host_memory()
    assert res["ok"] and res["rank"] == 1 and res["ms"] >= 0 and isinstance(res["trimmed"], bool)
    assert 0 < res["private_dirty_after_bytes"] <= res["private_dirty_before_bytes"]
    assert res["context"] == {"applied": False}  # STASIS_VLLM_CONTEXT_STACK unset: the CUDA context left alone


def test_vllm_ext_trim_says_why_the_context_stack_was_not_set_and_still_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STASIS_VLLM_CONTEXT_STACK", "1024")
    res = FakeWorker().stasis_trim_host_memory()
    assert res["ok"] and isinstance(res["trimmed"], bool)
    if not torch.cuda.is_available():
        assert res["context"]["applied"] is False and res["context"]["error"]["code"] == "no_cuda"


def test_vllm_ext_without_vllm_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # make `import vllm...` fail like on a machine without it
    res = FakeWorker().stasis_weights_layout()
    assert not res["ok"] and res["error"]["code"] == "vllm_unavailable"


def test_vllm_ext_method_names_do_not_clash() -> None:
    # vLLM refuses an extension attribute the worker already has; ours are all namespaced.
    names = [n for n in dir(StasisWorkerExtension) if not n.startswith("__")]
    assert names and all(n.startswith(("stasis_", "_stasis_")) for n in names)


def test_vllm_ext_import_is_light() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = "import sys, stasis_engine.vllm; print('torch' in sys.modules, 'vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split() == ["False", "False"]


class FakeDriver:
    """The driver calls adoption makes, recorded; "imports" hand out handles 100, 101, ...; ``fail_at`` makes the
    n-th map fail as the driver would."""

    def __init__(self, fail_at: int = -1) -> None:
        self.fail_at = fail_at
        self.calls: list[tuple[Any, ...]] = []
        self.next_handle = 100

    def call(self, name: str, *args: Any) -> None:
        import ctypes

        if name == "cuMemImportFromShareableHandle":
            args[0]._obj.value = self.next_handle
            self.next_handle += 1
        if name == "cuMemMap" and sum(c[0] == "cuMemMap" for c in self.calls) == self.fail_at:
            self.calls.append((name, *args))
            raise StasisEngineError("cuda_error", "cuMemMap failed: CUDA_ERROR_INVALID_VALUE (1)")
        plain = tuple(a.value if isinstance(a, ctypes.c_void_p) else a for a in args if not hasattr(a, "_obj"))
        self.calls.append((name, *plain))


def _sleeping_pool() -> tuple[dict[int, FakeAllocationData], list[Any]]:
    """A weights pool as vLLM leaves it at sleep level 2 (allocations unmapped, addresses kept), with a real
    place for each allocation's handle, as vLLM's C allocator keeps it."""
    import ctypes

    slots = [ctypes.c_uint64(0) for _ in range(3)]
    sizes = [(0x7F00_0000_0000, 4 << 20), (0x7F00_0040_0000, 2 << 20), (0x7F00_0060_0000, 2 << 20)]
    data = {
        a: FakeAllocationData((0, n, a, ctypes.addressof(slot)), "weights", is_asleep=True)
        for (a, n), slot in zip(sizes, slots, strict=True)
    }
    data[0x7E00_0000_0000] = FakeAllocationData((0, 2 << 20, 0x7E00_0000_0000, 0), "kv_cache", is_asleep=True)
    return data, slots


def test_vllm_ext_adopts_staged_weights_at_the_pools_addresses_and_vllm_can_release_them() -> None:
    data, slots = _sleeping_pool()
    drv = FakeDriver()
    out = _pool.adopt(data, [4 << 20, 2 << 20, 2 << 20], [7, 8, 9], device=0, driver=drv)
    assert out == {"bytes": 8 << 20, "allocations": 3}
    maps = [c for c in drv.calls if c[0] == "cuMemMap"]
    assert [(c[1], c[2]) for c in maps] == [
        (0x7F00_0000_0000, 4 << 20),
        (0x7F00_0040_0000, 2 << 20),
        (0x7F00_0060_0000, 2 << 20),
    ]
    # vLLM's next sleep releases the handle it finds in p_memHandle: the imported one.
    assert [s.value for s in slots] == [100, 101, 102]
    weights = [d for d in data.values() if d.handle[2] >= 0x7F00_0000_0000]
    assert all(not d.is_asleep and d.tag == _pool.ADOPTED_TAG for d in weights)
    assert data[0x7E00_0000_0000].is_asleep and data[0x7E00_0000_0000].tag == "kv_cache"  # the KV cache untouched
    assert _pool.settle(data) == 3 and all(d.tag == "weights" for d in weights)


def test_vllm_ext_a_failed_adoption_leaves_the_pool_asleep_as_it_was() -> None:
    data, slots = _sleeping_pool()
    drv = FakeDriver(fail_at=2)  # the third allocation's map fails
    with pytest.raises(StasisEngineError, match="cuMemMap"):
        _pool.adopt(data, [4 << 20, 2 << 20, 2 << 20], [7, 8, 9], device=0, driver=drv)
    names = [c[0] for c in drv.calls]
    assert names.count("cuMemUnmap") == 2 and names.count("cuMemRelease") == 3  # two mapped, three imported
    assert [s.value for s in slots] == [0, 0, 0]
    assert all(d.is_asleep and d.tag in ("weights", "kv_cache") for d in data.values())


@pytest.mark.parametrize(
    "pieces, words",
    [
        ([4 << 20, 2 << 20], "offers 2 allocations, the weights pool has 3"),
        ([2 << 20, 4 << 20, 2 << 20], "differ from allocation 0"),
    ],
)
def test_vllm_ext_refuses_staged_weights_of_another_layout(pieces: list[int], words: str) -> None:
    data, _ = _sleeping_pool()
    drv = FakeDriver()
    with pytest.raises(StasisEngineError) as e:
        _pool.adopt(data, pieces, list(range(len(pieces))), device=0, driver=drv)
    assert e.value.code == "weights_layout" and words in e.value.message and not drv.calls


def test_vllm_ext_refuses_to_adopt_over_awake_weights() -> None:
    data, _ = _sleeping_pool()
    next(iter(data.values())).is_asleep = False
    with pytest.raises(StasisEngineError) as e:
        _pool.adopt(data, [4 << 20, 2 << 20, 2 << 20], [1, 2, 3], device=0, driver=FakeDriver())
    assert e.value.code == "vllm_weights_awake"


def test_vllm_ext_layout_says_how_to_run_a_stager(pool: tuple[FakeAllocator, list[torch.Tensor]]) -> None:
    import os
    import sys

    out = FakeWorker().stasis_weights_layout()
    assert out["ok"] and out["stage"]["python"] == sys.executable
    assert os.path.isdir(os.path.join(out["stage"]["path"], "stasis_engine"))
