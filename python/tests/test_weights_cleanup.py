"""Cleanup invariants of the load pipelines: every staging buffer freed and every registration undone, on
success and when a read or a registration fails half-way (CPU, through a counting host copier; CI)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import _libc, dump, load
from stasis_engine.weights._copier import HostCopier

SMALL = {"ring_slots": 3, "slot_mb": 1, "read_mb": 1, "register_mb": 1, "threads": 4}


class CountingCopier(HostCopier):
    def __init__(self, fail_register_at: int = -1) -> None:
        self.lock = threading.Lock()
        self.staging: set[int] = set()
        self.registered: set[int] = set()
        self.allocs = self.registers = self.closed = 0
        self.fail_register_at = fail_register_at

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

    def register_readonly(self, address: int, size: int) -> None:
        with self.lock:
            self.registers += 1
            if self.registers == self.fail_register_at:
                raise StasisEngineError("cuda_error", "cudaHostRegister failed (injected)")
            self.registered.add(address)

    def unregister(self, address: int) -> None:
        with self.lock:
            self.registered.remove(address)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    src = {f"t{i}": torch.randn(300_000 + i, generator=g) for i in range(6)}  # ~7 MB: several 1 MiB windows
    path = tmp_path / "w.stasisw"
    dump(src, path)
    return path, {k: torch.zeros_like(v) for k, v in src.items()}


@pytest.mark.parametrize("method", ["pinned-ring", "hostreg", "hybrid", "direct"])
def test_weights_pipeline_releases_everything(setup, monkeypatch: pytest.MonkeyPatch, method: str) -> None:  # type: ignore[no-untyped-def]
    path, targets = setup
    copier = CountingCopier()
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None: copier)
    load.load_into(targets, path, method=method, **SMALL)
    copiers = 2 if method == "hybrid" else 1  # hybrid: one copier (stream) for each half, both closed
    assert copier.staging == set() and copier.registered == set() and copier.closed == copiers
    assert (copier.allocs > 0) == (method != "hostreg") and (copier.registers > 0) == (method in ("hostreg", "hybrid"))


@pytest.mark.parametrize("method", ["pinned-ring", "hybrid", "direct"])
def test_weights_ring_read_failure_releases_everything(setup, monkeypatch: pytest.MonkeyPatch, method: str) -> None:  # type: ignore[no-untyped-def]
    path, targets = setup
    copier = CountingCopier()
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None: copier)
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
    assert copier.staging == set() and copier.registered == set() and copier.closed == (2 if method == "hybrid" else 1)


@pytest.mark.parametrize("method", ["hostreg", "hybrid"])
def test_weights_hostreg_register_failure_undoes_the_others(setup, monkeypatch: pytest.MonkeyPatch, method: str) -> None:  # type: ignore[no-untyped-def]
    """hybrid: the registered half fails, the ring half still runs to its end; everything is released either way."""
    path, targets = setup
    copier = CountingCopier(fail_register_at=3)
    monkeypatch.setattr(load, "open_copier", lambda kind, index, rt=None: copier)
    with pytest.raises(StasisEngineError) as e:
        load.load_into(targets, path, method=method, **{**SMALL, "hostreg_share": 0.6})
    assert "injected" in e.value.message
    assert copier.registers >= 3 and copier.registered == set() and copier.staging == set()
    assert copier.closed == (2 if method == "hybrid" else 1)
