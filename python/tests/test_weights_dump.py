"""dump: layout and atomicity (CPU, CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import _libc, dump, read_header
from stasis_engine.weights.format import IO_ALIGN


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {f"t{i}": torch.randn(1000 + i * 13, generator=g) for i in range(5)}


def test_weights_dump_writes_in_address_order(tmp_path: Path) -> None:
    src = tensors()
    path = tmp_path / "w.stasisw"
    stats = dump(src, path)
    h = read_header(path)
    by_address = sorted(src, key=lambda k: src[k].data_ptr())
    assert [e.name for e in h.extents] == by_address
    assert stats.extents == 5 and stats.file_size == h.file_size == path.stat().st_size
    assert stats.bytes == sum(v.numel() * 4 for v in src.values())


def test_weights_dump_alignment_option(tmp_path: Path) -> None:
    path = tmp_path / "w.stasisw"
    dump(tensors(), path, alignment=2 << 20)
    h = read_header(path)
    assert h.alignment == 2 << 20 and h.data_offset % (2 << 20) == 0
    assert all(e.offset % (2 << 20) == 0 for e in h.extents)
    with pytest.raises(StasisEngineError) as e:
        dump(tensors(), path, alignment=512)
    assert e.value.code == "bad_argument"


def test_weights_dump_meta_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "w.stasisw"
    dump(tensors(), path, meta={"model": "tiny"})
    assert read_header(path).meta["model"] == "tiny"


def test_weights_dump_many_extents_grow_the_header(tmp_path: Path) -> None:
    arena = torch.randn(3000)
    src = {f"layer.{i}.weight.with.a.long.name": arena[i * 3 : i * 3 + 3] for i in range(1000)}
    path = tmp_path / "w.stasisw"
    dump(src, path)
    h = read_header(path)
    assert h.data_offset > IO_ALIGN and len(h.extents) == 1000
    # views of one arena are adjacent in memory, so they are packed back to back in the file
    offsets = [e.offset for e in h.extents]
    assert offsets == list(range(offsets[0], offsets[0] + 12 * 1000, 12))


def test_weights_dump_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.stasisw"
    calls = {"n": 0}
    real = _libc.write_exact

    def failing(fd: int, address: int, size: int, offset: int) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise StasisEngineError("weights_io", "disk full (injected)")
        return real(fd, address, size, offset)

    monkeypatch.setattr(_libc, "write_exact", failing)
    with pytest.raises(StasisEngineError) as e:
        dump(tensors(), path, threads=1)
    assert "injected" in e.value.message
    assert os.listdir(tmp_path) == []  # no file at path, no temp file beside it


def test_weights_dump_failure_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.stasisw"
    dump(tensors(), path)
    before = path.read_bytes()

    def failing(*_: object) -> int:
        raise StasisEngineError("weights_io", "injected")

    monkeypatch.setattr(_libc, "write_exact", failing)
    with pytest.raises(StasisEngineError):
        dump({"x": torch.ones(10)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["w.stasisw"]


def test_weights_dump_rejects_bad_sources_before_creating_a_file(tmp_path: Path) -> None:
    path = tmp_path / "w.stasisw"
    base = torch.randn(10, 10)
    cases = [
        ({"a": base.t()}, "weights_target"),  # not contiguous
        ({"a": base, "b": base[0]}, "weights_target"),  # overlapping
        ({1: base}, "bad_argument"),
        (42, "bad_argument"),
    ]
    for source, code in cases:
        with pytest.raises(StasisEngineError) as e:
            dump(source, path)  # type: ignore[arg-type]
        assert e.value.code == code
    assert os.listdir(tmp_path) == []


def test_weights_dump_file_is_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "w.stasisw"
    dump(tensors(), path)
    assert path.stat().st_mode & 0o777 == 0o644
