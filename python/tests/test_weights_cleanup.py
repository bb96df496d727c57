"""Cleanup invariants of the load pipelines: every staging buffer freed and every registration undone, on
success and when a read or a registration fails half-way (CPU, through a counting host copier; CI)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import _libc, _native, dump, load
from stasis_engine.weights._copier import HostCopier

SMALL = {"ring_slots": 3, "slot_mb": 1, "read_mb": 1, "lane_mb": 1, "threads": 4}


class CountingCopier(HostCopier):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.staging: set[int] = set()
        self.allocs = self.closed = 0

    def alloc_staging(self, size: int) -> int:
        address = super().alloc_staging(size)
        with self.lock:
            self.staging.add(address)
            self.allocs += 1
        return address

    def free_staging(self, address: int, size: int) -> None:
        with self.lock:
            self.staging.remove(address)
        super().free_staging(address, size)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    src = {f"t{i}": torch.randn(300_000 + i, generator=g) for i in range(6)}  # ~7 MB: several 1 MiB windows
    path = tmp_path / "w.stasisw"
    dump(src, path)
    return path, {k: torch.zeros_like(v) for k, v in src.items()}


def opened(method: str) -> int:
    """Copiers (streams) a load opens, all closed at its end: lanes one per thread."""
    return {"lanes": SMALL["threads"]}.get(method, 1)


@pytest.mark.parametrize("method", ["pinned-ring", "lanes", "direct"])
def test_weights_pipeline_releases_everything(setup, monkeypatch: pytest.MonkeyPatch, method: str) -> None:  # type: ignore[no-untyped-def]
    path, targets = setup
    copier = CountingCopier()
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None, synchronize=True: copier)
    load.load_into(targets, path, method=method, **SMALL)
    copiers = opened(method)
    assert copier.staging == set() and copier.closed == copiers
    # lanes: the C loop maps its slots itself (test_weights_native_lanes_unmaps_its_slots)
    assert (copier.allocs > 0) == (method != "lanes")


@pytest.mark.parametrize("method", ["pinned-ring", "lanes", "direct"])
def test_weights_ring_read_failure_releases_everything(setup, monkeypatch: pytest.MonkeyPatch, method: str) -> None:  # type: ignore[no-untyped-def]
    path, targets = setup
    monkeypatch.setattr(_native, "library", lambda: None)  # lanes: the Python loop, whose reads go through _libc
    copier = CountingCopier()
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None, synchronize=True: copier)
    calls = {"n": 0}
    real = _libc.read_exact
    lock = threading.Lock()

    def flaky(fd: int, address: int, size: int, offset: int) -> int:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n == 4:
            raise StasisEngineError("weights_io", "pread failed (injected)")
        return real(fd, address, size, offset)

    monkeypatch.setattr(_libc, "read_exact", flaky)
    with pytest.raises(StasisEngineError) as e:
        load.load_into(targets, path, method=method, **SMALL)
    assert "injected" in e.value.message
    assert copier.staging == set() and copier.closed == opened(method)


def test_weights_native_lanes_read_failure_releases_everything(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The C loop: a pread that fails (the file opened write-only) stops every lane; everything is released."""
    if _native.library() is None:
        pytest.skip("the C lanes loop is not built")
    path, targets = setup
    copier = CountingCopier()
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None, synchronize=True: copier)
    monkeypatch.setattr(load, "_open", lambda p, method, notes: os.open(p, os.O_WRONLY))
    with pytest.raises(StasisEngineError) as e:
        load.load_into(targets, path, method="lanes", **SMALL)
    assert e.value.code == "weights_io" and "pread failed" in e.value.message
    assert copier.staging == set() and copier.closed == opened("lanes")


@pytest.mark.parametrize("fails", [False, True])
def test_weights_native_lanes_unmaps_its_slots(setup, monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:  # type: ignore[no-untyped-def]
    """The C loop's slots (one mapping for all lanes) are unmapped after a load, and after a failed one."""
    if _native.library() is None:
        pytest.skip("the C lanes loop is not built")
    path, targets = setup
    mapped: dict[int, int] = {}
    real_map, real_unmap = _libc.map_anonymous, _libc.unmap

    def map_anonymous(size: int, **kw: bool) -> int:
        address = real_map(size, **kw)
        mapped[address] = size
        return address

    def unmap(address: int, size: int) -> None:
        assert mapped.pop(address) == size
        real_unmap(address, size)

    monkeypatch.setattr(_libc, "map_anonymous", map_anonymous)
    monkeypatch.setattr(_libc, "unmap", unmap)
    if fails:
        monkeypatch.setattr(load, "_open", lambda p, method, notes: os.open(p, os.O_WRONLY))
    try:
        load.load_into(targets, path, method="lanes", **SMALL)
    except StasisEngineError as e:
        assert fails and e.code == "weights_io"
    else:
        assert not fails
    assert mapped == {}


def test_weights_lanes_wait_for_the_device_once(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Every lane has a copier of its own (a stream, its events), but only the load's first waits for the device to
    be idle: one wait per load, not one per lane (each a driver round trip on the hot path)."""
    from stasis_engine.weights._copier import CudaCopier

    class Runtime:
        syncs = 0

        def get_device(self) -> int:
            return 0

        def set_device(self, index: int) -> None: ...

        def device_synchronize(self) -> None:
            Runtime.syncs += 1

        def stream_create(self) -> int:
            return 1

    CudaCopier(0, Runtime())
    CudaCopier(0, Runtime(), synchronize=False)
    assert Runtime.syncs == 1
    asked: list[bool] = []

    def open_copier(kind: str, index: int | None, rt: object = None, synchronize: bool = True) -> HostCopier:
        asked.append(synchronize)
        return HostCopier()

    monkeypatch.setattr(load, "open_copier", open_copier)
    path, targets = setup
    load.load_into(targets, path, method="lanes", **SMALL)
    assert asked == [True] + [False] * (SMALL["threads"] - 1)
