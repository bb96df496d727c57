"""Planning reads and copies: coalescing and windows (pure logic, CI)."""

from __future__ import annotations

import pytest

from stasis_engine.weights._plan import Copy, coalesce, spans, windows

MIB = 1 << 20


def test_weights_coalesce_merges_only_same_group_neighbours() -> None:
    copies = [
        Copy(8192, 1000 + 100, 50, group=7),
        Copy(4096 + 4096, 0, 0, group=7),  # empty: dropped
        Copy(8192 + 50, 1000 + 150, 30, group=7),  # adjacent in file and memory, same group: merged
        Copy(8192 + 80, 1000 + 180, 10, group=8),  # other allocation: kept apart
        Copy(8192 + 90, 1000 + 190, 10, group=-1),  # raw extent: never merged
        Copy(8192 + 100, 1000 + 200, 10, group=-1),
    ]
    out = coalesce(copies)
    assert out[0] == Copy(8192, 1100, 80, 7)
    assert len(out) == 4


def test_weights_spans_merge_small_gaps_and_align() -> None:
    copies = [Copy(4096 + 10, 0, 100), Copy(4096 + 200_000, 0, 100), Copy(100 * MIB, 0, 5000)]
    assert spans(copies, file_size=200 * MIB) == [(4096, 204_800), (100 * MIB, 100 * MIB + 8192)]


def test_weights_windows_cover_every_byte_once() -> None:
    copies = coalesce(
        [
            Copy(4096, 10_000_000, 3 * MIB + 5),
            Copy(4096 + 3 * MIB + 5, 50_000_000, 123, 1),
            Copy(8 * MIB, 90_000_000, MIB),
        ]
    )
    wins = windows(copies, file_size=16 * MIB, window_bytes=MIB)
    seen: dict[int, int] = {}
    for w in wins:
        assert w.start % 4096 == 0 and w.length <= MIB
        for off, dst, size in w.pieces:
            assert 0 <= off and off + size <= w.length
            for c in copies:
                if c.offset <= w.start + off < c.offset + c.size:
                    assert dst == c.address + (w.start + off - c.offset)
            seen[w.start + off] = size
    assert sum(seen.values()) == sum(c.size for c in copies)


def test_weights_windows_reject_unaligned_size() -> None:
    with pytest.raises(ValueError):
        windows([Copy(4096, 0, 10)], file_size=8192, window_bytes=1000)


def test_weights_resident_fraction_sees_the_page_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from stasis_engine.weights import _libc

    path = tmp_path / "f"
    path.write_bytes(os.urandom(8 * MIB))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        base = _libc.map_file(fd, 8 * MIB)
        try:
            assert _libc.resident_fraction(base, [(0, 8 * MIB)]) == 1.0  # just written: cached
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            cold = _libc.resident_fraction(base, [(0, 8 * MIB)])
            if cold == 1.0:
                pytest.skip("this filesystem keeps the pages (tmpfs)")
            assert cold is not None and cold < 0.5
        finally:
            _libc.unmap(base, 8 * MIB)
    finally:
        os.close(fd)
