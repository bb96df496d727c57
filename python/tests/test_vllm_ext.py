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
from stasis_engine.vllm import StasisWorkerExtension
from stasis_engine.vllm import _pool
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
            b.data_ptr(): FakeAllocationData((0, b.numel(), b.data_ptr(), 0), tag) for b, tag in zip(buffers, tags)
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
    assert res == {"ok": False, "rank": 1, "error": res["error"]} and res["error"]["code"] == "weights_missing"
    assert "missing-1.stasisw" in res["error"]["message"]
    assert worker.stasis_dump_weights(str(tmp_path / "no-rank.stasisw"))["error"]["code"] == "bad_argument"
    assert worker.stasis_load_weights(str(tmp_path / "x-{rank}"), "warp")["error"]["code"] == "bad_argument"


def test_vllm_ext_trims_the_workers_host_memory() -> None:
    res = FakeWorker(rank=1, world_size=2).stasis_trim_host_memory()
    assert res["ok"] and res["rank"] == 1 and res["ms"] >= 0 and isinstance(res["trimmed"], bool)
    assert 0 < res["private_dirty_after_bytes"] <= res["private_dirty_before_bytes"]


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
