"""Giving freed host memory back before a checkpoint: what it reports, and that it runs where glibc's trim is absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stasis_engine import host_trim
from stasis_engine.host_trim import private_dirty_bytes, trim_host_memory

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def _fragment_the_heap(n: int = 64 * 1024, size: int = 2048) -> list[bytearray]:
    """About 128 MiB of heap blocks, one in 64 kept: glibc cannot give the rest back by shrinking the heap's top,
    only ``malloc_trim`` releases the free pages between the survivors."""
    blocks = [bytearray(b"x" * size) for _ in range(n)]
    return blocks[::64]


def test_trim_reports_private_dirty_before_and_after() -> None:
    survivors = _fragment_the_heap()
    report = trim_host_memory(measure=True)
    assert report["ms"] >= 0 and isinstance(report["trimmed"], bool)
    before, after = report["private_dirty_before_bytes"], report["private_dirty_after_bytes"]
    assert before is not None and after is not None and 0 < after <= before
    if report["trimmed"]:  # glibc: the freed blocks between the survivors went back
        assert before - after > 32 * MIB, report
    assert len(survivors) == 1024


def test_trim_without_measure_reads_no_smaps() -> None:
    assert set(trim_host_memory(collect=False)) == {"ms", "trimmed"}


def test_trim_where_the_c_library_has_no_malloc_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_trim, "_malloc_trim", lambda: None)
    report = trim_host_memory(measure=True)
    assert report["trimmed"] is False and report["ms"] >= 0
    assert report["private_dirty_after_bytes"] is not None


def test_no_malloc_trim_lookup_fails_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    host_trim._malloc_trim.cache_clear()
    monkeypatch.setattr(host_trim.ctypes, "CDLL", lambda name: object())  # a C library without the symbol
    try:
        assert host_trim._malloc_trim() is None
    finally:
        host_trim._malloc_trim.cache_clear()


def test_private_dirty_bytes_is_page_precise() -> None:
    n = private_dirty_bytes()
    assert n is not None and n > 0 and n % 4096 == 0


def test_trim_loads_neither_torch_nor_cuda() -> None:
    # The frontends and a CPU engine must not get a CUDA context (or torch) from a trim before their checkpoint.
    code = (
        "import sys; from stasis_engine.host_trim import trim_host_memory; "
        "trim_host_memory(measure=True); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False"]
