"""load_into on the CPU: every method's pipeline (through the host copier), and every validation error
leaving the targets untouched (CI)."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import Extent, _native, dump, load_into, read_header
from stasis_engine.weights._targets import from_source
from stasis_engine.weights.load import LoadTuning, load_targets

METHODS = ["auto", "cpu", "pinned-ring", "lanes", "direct"]
# Tiny ring/registration windows so extents straddle windows and the ring wraps many times.
SMALL = {"ring_slots": 3, "slot_mb": 1, "read_mb": 1}


def model(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "embed": torch.randn(1500, 700, generator=g).to(torch.bfloat16),  # 2.1 MB: spans several 1 MiB windows
        "q": torch.randn(300, 300, generator=g).to(torch.float16),
        "ids": torch.randint(-(2**31), 2**31 - 1, (12345,), dtype=torch.int32, generator=g),
        "norm": torch.randn(3, generator=g),
        "bias8": torch.randint(0, 255, (4097,), dtype=torch.uint8, generator=g),
        "empty": torch.empty(0, 5),
    }


def poisoned_like(src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in src.items():
        t = torch.empty_like(v)
        if t.numel():
            t.view(torch.uint8).view(-1).fill_(0xA5)
        out[k] = t
    return out


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.numel() == 0:
        return b.numel() == 0
    return bool(torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)))


def snapshot(targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in targets.items()}


@pytest.fixture
def src() -> dict[str, torch.Tensor]:
    return model()


@pytest.fixture
def wfile(tmp_path: Path, src: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "w.stasisw"
    dump(src, path)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_weights_round_trip_bit_exact(wfile: Path, src: dict[str, torch.Tensor], method: str) -> None:
    targets = poisoned_like(src)
    stats = load_into(targets, wfile, method=method, threads=3, **SMALL)
    for k in src:
        assert same_bytes(targets[k], src[k]), k
    assert stats.bytes == sum(v.numel() * v.element_size() for v in src.values())
    assert stats.method in METHODS and stats.method != "auto"
    assert stats.extents == len(src) and stats.seconds > 0 and stats.gbps > 0
    assert "validate" in stats.stages and "pipeline" in stats.stages


@pytest.mark.parametrize("method", METHODS)
def test_weights_round_trip_default_geometry(wfile: Path, src: dict[str, torch.Tensor], method: str) -> None:
    targets = poisoned_like(src)
    load_into(targets, wfile, method=method)
    assert all(same_bytes(targets[k], src[k]) for k in src)


@pytest.mark.parametrize("method", METHODS)
def test_weights_raw_extents_round_trip(tmp_path: Path, method: str) -> None:
    g = torch.Generator().manual_seed(3)
    # Two adjacent extents in one buffer (packed back to back in the file) and a separate one.
    arena = torch.randint(0, 256, (3 << 20,), dtype=torch.uint8, generator=g)
    other = torch.randint(0, 256, (777_777,), dtype=torch.uint8, generator=g)
    base = arena.data_ptr()
    extents = [Extent(base, 1 << 20), Extent(base + (1 << 20), 2 << 20), Extent(other.data_ptr(), other.numel())]
    path = tmp_path / "pool.stasisw"
    dump(extents, path, device="cpu")
    h = read_header(path)
    assert h.kind == "extents" and [e.address for e in h.extents] == sorted(e.address for e in extents)
    by_address = {e.address: e for e in h.extents}
    first, second = by_address[base], by_address[base + (1 << 20)]
    assert second.offset == first.offset + first.size  # adjacent in memory -> adjacent in the file
    want_arena, want_other = arena.clone(), other.clone()
    arena.fill_(0xA5)
    other.fill_(0x5A)
    stats = load_into(extents, path, method=method, device="cpu", **SMALL)
    assert torch.equal(arena, want_arena) and torch.equal(other, want_other)
    assert stats.copies == 3  # raw extents are never merged (each may be its own GPU mapping)


def test_weights_views_of_one_arena_coalesce(tmp_path: Path) -> None:
    arena = torch.randn(4096 * 3, generator=torch.Generator().manual_seed(5))
    views = {"a": arena[:4096], "b": arena[4096:8192], "c": arena[8192:]}
    path = tmp_path / "arena.stasisw"
    dump(views, path)
    want = arena.clone()
    arena.zero_()
    stats = load_into(views, path, method="pinned-ring", **SMALL)
    assert torch.equal(arena, want)
    assert stats.copies == 1  # three adjacent views of one storage -> one copy


def test_weights_load_into_other_tensors(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    """A named-tensor dump loads into any tensors of the same names, dtypes and shapes (a fresh process)."""
    fresh = poisoned_like(model(seed=9))
    load_into(fresh, wfile)
    assert all(same_bytes(fresh[k], src[k]) for k in src)


def test_weights_strict_false_loads_a_subset(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    part = poisoned_like({"q": src["q"], "norm": src["norm"]})
    load_into(part, wfile, strict=False, method="pinned-ring", **SMALL)
    assert same_bytes(part["q"], src["q"]) and same_bytes(part["norm"], src["norm"])


def test_weights_verify_true_passes_on_a_good_file(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    targets = poisoned_like(src)
    stats = load_into(targets, wfile, verify=True)
    assert "verify" in stats.stages and all(same_bytes(targets[k], src[k]) for k in src)


# --- validation: an error, a clear message naming the extent, and not one byte written -------------------


def expect_untouched(targets: dict[str, torch.Tensor], call, code: str, words: str = "") -> StasisEngineError:  # type: ignore[no-untyped-def]
    before = snapshot(targets)
    with pytest.raises(StasisEngineError) as e:
        call()
    assert e.value.code == code, str(e.value)
    assert words in str(e.value), str(e.value)
    for k in targets:
        assert same_bytes(targets[k], before[k]), f"{k} was written despite the error"
    return e.value


def test_weights_missing_file_writes_nothing(tmp_path: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    expect_untouched(t, lambda: load_into(t, tmp_path / "none.stasisw"), "weights_missing", "none.stasisw")


def test_weights_truncated_file_writes_nothing(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    import os

    os.truncate(wfile, wfile.stat().st_size - 1)
    t = poisoned_like(src)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_truncated")


def test_weights_corrupt_header_writes_nothing(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    with open(wfile, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff")
    t = poisoned_like(src)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_bad_header")


@pytest.mark.parametrize("method", METHODS)
def test_weights_corrupt_extent_detected_by_verify(wfile: Path, src: dict[str, torch.Tensor], method: str) -> None:
    e = next(r for r in read_header(wfile).extents if r.name == "q")
    with open(wfile, "r+b") as f:
        f.seek(e.offset + 5)
        b = f.read(1)
        f.seek(e.offset + 5)
        f.write(bytes([b[0] ^ 0x10]))
    t = poisoned_like(src)
    expect_untouched(t, lambda: load_into(t, wfile, verify=True, method=method), "weights_checksum", "'q'")
    # Without verify the hot path does not hash: the load succeeds and carries the corrupt byte.
    load_into(t, wfile, method=method)
    assert not same_bytes(t["q"], src["q"]) and same_bytes(t["embed"], src["embed"])


def test_weights_wrong_dtype(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["q"] = torch.full((300, 150), 7, dtype=torch.float32)  # same byte size, other dtype/shape
    expect_untouched(
        t, lambda: load_into(t, wfile), "weights_target", "'q': dtype float16 in the file, target is float32"
    )


def test_weights_wrong_shape(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["q"] = torch.full((150, 600), 7, dtype=torch.float16)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_target", "'q': shape [300, 300] in the file")


def test_weights_target_smaller_than_extent(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["embed"] = torch.full((1500, 699), 7, dtype=torch.bfloat16)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_target", "'embed': target is smaller than the extent")


def test_weights_target_larger_than_extent(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["norm"] = torch.full((4,), 7.0)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_target", "'norm': target is larger")


def test_weights_raw_extent_smaller_than_dumped(tmp_path: Path) -> None:
    buf = torch.randint(0, 256, (8192,), dtype=torch.uint8)
    path = tmp_path / "x.stasisw"
    dump([Extent(buf.data_ptr(), 8192)], path, device="cpu")
    buf.fill_(0xA5)
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(buf.data_ptr(), 4096)], path, device="cpu")
    assert e.value.code == "weights_target" and "smaller than the extent (4096 < 8192" in e.value.message
    assert bool((buf == 0xA5).all())


def test_weights_raw_extent_moved(tmp_path: Path) -> None:
    buf = torch.randint(0, 256, (16384,), dtype=torch.uint8)
    path = tmp_path / "x.stasisw"
    dump([Extent(buf.data_ptr(), 8192)], path, device="cpu")
    buf.fill_(0xA5)
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(buf.data_ptr() + 8192, 8192)], path, device="cpu")
    assert e.value.code == "weights_layout" and "has no extent in the file" in e.value.message
    assert bool((buf == 0xA5).all())


def test_weights_unknown_target(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["extra"] = torch.zeros(3)
    expect_untouched(t, lambda: load_into(t, wfile), "weights_layout", "target 'extra' has no extent")


def test_weights_missing_target_when_strict(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    del t["ids"]
    expect_untouched(t, lambda: load_into(t, wfile), "weights_layout", "extent 'ids' has no target")


def test_weights_overlapping_targets(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["norm"] = t["embed"].view(-1)[:6].view(torch.float32)[:3]  # aliases embed
    expect_untouched(t, lambda: load_into(t, wfile), "weights_target", "overlap")


def test_weights_non_contiguous_target(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    t["q"] = torch.empty(300, 300, dtype=torch.float16).t()
    expect_untouched(t, lambda: load_into(t, wfile), "weights_target", "not contiguous")


def test_weights_extent_file_needs_extent_targets(wfile: Path) -> None:
    buf = torch.zeros(4096, dtype=torch.uint8)
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(buf.data_ptr(), 4096)], wfile, device="cpu")
    assert e.value.code == "weights_layout" and "holds tensors" in e.value.message


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"method": "fast"}, "method="),
        ({"ring_slots": 1}, "ring_slots"),
        ({"slot_mb": 0}, "slot_mb"),
        ({"threads": 0}, "threads"),
        ({"threads": 257}, "threads=257, expected an integer between 1 and 256"),
    ],
)
def test_weights_bad_arguments(wfile: Path, src: dict[str, torch.Tensor], kwargs: dict, words: str) -> None:  # type: ignore[type-arg]
    t = poisoned_like(src)
    expect_untouched(t, lambda: load_into(t, wfile, **kwargs), "bad_argument", words)


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"method": "fast"}, "method='fast', expected one of auto"),
        ({"lane_slots": 1}, "lane_slots=1, expected an integer between 2 and"),
        ({"lane_mb": 0}, "lane_mb=0, expected an integer >= 1"),
        ({"read_mb": "4"}, "read_mb='4', expected an integer >= 1"),
    ],
)
def test_load_tuning_is_checked_as_it_is_made(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(StasisEngineError) as e:
        LoadTuning(**fields)
    assert e.value.code == "bad_argument" and words in e.value.message


def test_load_targets_reads_as_its_tuning_says(wfile: Path, src: dict[str, torch.Tensor]) -> None:
    t = poisoned_like(src)
    kind, tlist, dev = from_source(t, None)
    stats = load_targets(kind, tlist, dev, wfile, LoadTuning(method="pinned-ring", threads=2, ring_slots=3, slot_mb=1))
    assert (stats.method, stats.threads) == ("pinned-ring", 2)
    for name, want in src.items():
        assert torch.equal(t[name].cpu(), want.cpu()), name


def test_weights_bad_target_types(wfile: Path) -> None:
    with pytest.raises(StasisEngineError) as e:
        load_into("not targets", wfile)  # type: ignore[arg-type]
    assert e.value.code == "bad_argument"
    with pytest.raises(StasisEngineError):
        load_into([(1, 2)], wfile, device="cpu")  # type: ignore[list-item]
    with pytest.raises(StasisEngineError):
        Extent(-1, 5)


@pytest.mark.parametrize("loop", ["C", "Python"])
@pytest.mark.parametrize(("threads", "lane_slots", "lane_mb"), [(1, 2, 1), (4, 2, 1), (3, 5, 2), (8, 2, 64)])
def test_weights_lanes_fill_every_byte_whatever_the_geometry(
    wfile: Path,
    src: dict[str, torch.Tensor],
    threads: int,
    lane_slots: int,
    lane_mb: int,
    loop: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if loop == "Python":
        monkeypatch.setattr(_native, "library", lambda: None)  # the fallback where the C helper is not built
    fresh = poisoned_like(src)
    stats = load_into(fresh, wfile, method="lanes", threads=threads, lane_slots=lane_slots, lane_mb=lane_mb)
    assert all(same_bytes(fresh[k], src[k]) for k in src)
    assert stats.method == "lanes" and stats.windows >= 1 and "read_max" in stats.stages
    assert any("Python loop" in n for n in stats.notes) == (loop == "Python")


def test_weights_native_lanes_helper_is_built() -> None:
    """scripts/python-env.sh builds _lanes.so; without it the loader silently falls back to the slower Python loop,
    so the test suite insists on it."""
    assert _native.library() is not None, f"{_native.LIBRARY} is missing: run scripts/python-env.sh"


def test_weights_native_lanes_end_of_file_is_weights_truncated(wfile: Path) -> None:
    """A window past the end of the file (as if it shrank after the checks): the C loop's EOF becomes the loader's
    ``weights_truncated``, the slots are freed."""
    from stasis_engine.weights._copier import HostCopier
    from stasis_engine.weights._plan import Copy

    lib = _native.library()
    assert lib is not None
    size = os.path.getsize(wfile)
    target = bytearray(4096)
    address = ctypes.addressof((ctypes.c_char * 4096).from_buffer(target))
    fd = os.open(wfile, os.O_RDONLY)
    try:
        with pytest.raises(StasisEngineError) as e:
            copiers = [HostCopier(), HostCopier()]
            api = copiers[0].native_api()
            assert api is not None
            past = size - size % 4096 + 4096
            slots = _native.LaneSlots(2, 2, 4096)
            try:
                _native.run_lanes_native(
                    lib, api, fd, [Copy(past, address, 4096)], [(past, past + 4096)], copiers, slots=slots, stages={}
                )
            finally:
                slots.close(copiers)
    finally:
        os.close(fd)
    assert e.value.code == "weights_truncated"
    assert slots.pinned() == [], "every lane gave its slots back"


class _RecordingCopier:
    """A host copier that records what it is asked to unpin."""

    def __init__(self) -> None:
        from stasis_engine.weights._copier import HostCopier

        self.host, self.unpinned = HostCopier(), []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.host, name)

    def unpin(self, address: int) -> None:
        self.unpinned.append(address)


def test_weights_lane_slots_pinned_ahead_are_used_by_the_run_and_given_back(wfile: Path) -> None:
    """Slots pinned ahead of the run (C threads, one per lane, slot by slot): the run finds them pinned and reads
    the same bytes; each lane gives its slots back as it ends, so closing unpins nothing."""
    from stasis_engine.weights._plan import Copy

    lib = _native.library()
    copiers = [_RecordingCopier(), _RecordingCopier(), _RecordingCopier()]
    api = copiers[0].native_api()
    assert lib is not None and api is not None
    header = read_header(wfile)
    extent = max(header.extents, key=lambda e: e.size)
    target = bytearray(extent.size)
    address = ctypes.addressof((ctypes.c_char * extent.size).from_buffer(target))
    slots = _native.LaneSlots(3, 2, 8192)
    slots.pin_ahead(lib, api)
    fd = os.open(wfile, os.O_RDONLY)
    try:
        deadline = time.monotonic() + 5
        every = [(i, s) for i in range(3) for s in range(2)]
        while slots.pinned() != every and time.monotonic() < deadline:
            time.sleep(0.001)
        assert slots.pinned() == every, "pinned ahead, before any run"
        assert set(slots.pin_span(0)) == {"pins_began", "pins_first", "pins_done"}
        stages: dict[str, float] = {}
        n = _native.run_lanes_native(
            lib,
            api,
            fd,
            [Copy(extent.offset, address, extent.size)],
            [(extent.offset, extent.offset + -(-extent.size // 4096) * 4096)],
            copiers,
            slots=slots,
            stages=stages,
        )
        assert n == -(-extent.size // 8192)
        assert slots.pinned() == []
    finally:
        os.close(fd)
        slots.close(copiers)
    with open(wfile, "rb") as f:
        f.seek(extent.offset)
        assert bytes(target) == f.read(extent.size)
    assert all(c.unpinned == [] for c in copiers)


def test_weights_lane_slots_pin_span_leaves_out_what_no_pinner_did() -> None:
    """The pinning's timeline: lanes whose first slots they pinned themselves (their pinners took only the second)
    have no first-slot time, rather than one of 0 ns; with nothing pinned ahead there is no timeline."""
    slots = _native.LaneSlots(2, 2, 4096)
    try:
        assert slots.pin_span(0) == {}, "nothing pinned ahead"
        for k, ns in enumerate((1_000, 0, 3_000, 1_200, 0, 2_500)):  # per lane: began, first slot, all
            slots.times[k] = ns
        assert slots.pin_span(1_000) == pytest.approx({"pins_began": 0.0, "pins_done": 2e-6})
        slots.times[4] = 2_000
        assert slots.pin_span(1_000) == pytest.approx({"pins_began": 0.0, "pins_first": 1e-6, "pins_done": 2e-6})
    finally:
        slots.close([])


def test_weights_lane_slots_pinned_ahead_and_not_used_are_unpinned_at_close() -> None:
    """A load that ends before its run (a failed check, or "auto" choosing another method): closing stops the
    pinning and unpins every slot it pinned, once each."""
    lib = _native.library()
    copier = _RecordingCopier()
    api = copier.native_api()
    assert lib is not None and api is not None
    slots = _native.LaneSlots(4, 2, 4096)
    slots.pin_ahead(lib, api)
    slots.close([copier])
    every = {slots.slot(i, s) for i in range(4) for s in range(2)}
    assert set(copier.unpinned) <= every and len(copier.unpinned) == len(set(copier.unpinned))
    assert slots.pinned() == []


def test_weights_lanes_fail_cleanly_when_a_lane_could_not_be_pinned(wfile: Path) -> None:
    """A lane whose first slot's pinning ahead failed: the run fails naming the CUDA error, no slot is left
    pinned."""
    from stasis_engine.weights._plan import Copy

    lib = _native.library()
    copiers = [_RecordingCopier(), _RecordingCopier()]
    api = copiers[0].native_api()
    assert lib is not None and api is not None
    target = bytearray(4096)
    address = ctypes.addressof((ctypes.c_char * 4096).from_buffer(target))
    slots = _native.LaneSlots(2, 2, 4096)
    slots.state[2], slots.error[2] = 3, 2  # lane 1's slot 0: PIN_FAILED, cudaErrorMemoryAllocation
    fd = os.open(wfile, os.O_RDONLY)
    try:
        with pytest.raises(StasisEngineError) as e:
            _native.run_lanes_native(
                lib, api, fd, [Copy(4096, address, 4096)], [(4096, 8192)], copiers, slots=slots, stages={}
            )
    finally:
        os.close(fd)
        slots.close(copiers)
    assert e.value.code == "cuda_error" and "pinning the lane's slots failed: CUDA error 2" in str(e.value)
    assert slots.pinned() == []


def _one_lane_over_the_largest_extent(wfile: Path, slots: Any) -> tuple[int, bytearray, Any]:
    """Runs one host lane over ``slots`` through the file's largest extent: (windows read, the bytes, the extent)."""
    from stasis_engine.weights._plan import Copy

    lib = _native.library()
    copiers = [_RecordingCopier()]
    api = copiers[0].native_api()
    assert lib is not None and api is not None
    extent = max(read_header(wfile).extents, key=lambda e: e.size)
    target = bytearray(extent.size)
    address = ctypes.addressof((ctypes.c_char * extent.size).from_buffer(target))
    fd = os.open(wfile, os.O_RDONLY)
    try:
        n = _native.run_lanes_native(
            lib,
            api,
            fd,
            [Copy(extent.offset, address, extent.size)],
            [(extent.offset, extent.offset + -(-extent.size // 4096) * 4096)],
            copiers,
            slots=slots,
            stages={},
        )
    finally:
        os.close(fd)
        slots.close(copiers)
    return n, target, extent


def test_weights_lane_starts_on_its_first_slot_and_runs_on_it_alone_until_more_are_pinned(wfile: Path) -> None:
    """Pinning ahead, a lane starts once its first slot is pinned (here by itself: no pinner reached it) and uses
    no slot before it is pinned: with its second slot never pinned, every window goes through the first."""
    slots = _native.LaneSlots(1, 2, 4096)
    slots.ahead = True  # as if pin_ahead had started, its pinner not yet there
    n, target, extent = _one_lane_over_the_largest_extent(wfile, slots)
    assert n == -(-extent.size // 4096) > 2
    with open(wfile, "rb") as f:
        f.seek(extent.offset)
        assert bytes(target) == f.read(extent.size)
    assert slots.pinned() == [] and slots.state[1] == 0, "the unpinned slot was never taken"


def test_weights_lanes_fail_cleanly_when_a_later_slot_could_not_be_pinned(wfile: Path) -> None:
    """A lane's second slot whose pinning failed while the lane ran on its first: the run fails naming it."""
    slots = _native.LaneSlots(1, 2, 4096)
    slots.ahead = True
    slots.state[1], slots.error[1] = 3, 2  # PIN_FAILED, cudaErrorMemoryAllocation
    with pytest.raises(StasisEngineError, match="pinning the lane's slots failed: CUDA error 2"):
        _one_lane_over_the_largest_extent(wfile, slots)
    assert slots.pinned() == []


@pytest.mark.parametrize("lane_mb", [1, 2])
def test_weights_native_lanes_make_the_windows_python_makes(
    wfile: Path, src: dict[str, torch.Tensor], lane_mb: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C loop plans its own windows: with two tensors left out (gaps between the copies, copies across window
    ends), it reads as many windows as the Python loop's ``_plan.windows`` and fills the same bytes; and over
    spans apart from each other (no gap read through), each span's own windows."""
    names = [k for k in src if k not in ("q", "ids")]
    got = {}
    real = _native.library
    for loop in ("1", "0"):
        monkeypatch.setattr(_native, "library", real if loop == "1" else lambda: None)
        part = {k: poisoned_like(src)[k] for k in names}
        got[loop] = load_into(part, wfile, method="lanes", strict=False, threads=3, lane_mb=lane_mb)
        assert all(same_bytes(part[k], src[k]) for k in names)
    assert got["1"].windows == got["0"].windows > 1
    assert not any("Python loop" in n for n in got["1"].notes)

    from stasis_engine.weights._copier import HostCopier
    from stasis_engine.weights._plan import Copy, coalesce, spans, windows

    header = read_header(wfile)
    part = poisoned_like(src)
    # The embedding (across several windows) and an extent not next to it in the file (the dump's layout varies).
    placed = sorted((e for e in header.extents if e.size), key=lambda e: e.offset)
    k = next(i for i, e in enumerate(placed) if e.name == "embed")
    other = next(e for i, e in enumerate(placed) if abs(i - k) >= 2)
    chosen = ("embed", other.name)
    copies = coalesce([Copy(e.offset, part[e.name].data_ptr(), e.size) for e in header.extents if e.name in chosen])
    apart = spans(copies, header.file_size, merge_gap=0)
    assert len(apart) == 2
    slot = lane_mb << 20
    expected = sum(len(windows([c], header.file_size, slot)) for c in copies)
    copiers = [HostCopier(), HostCopier()]
    api = copiers[0].native_api()
    monkeypatch.setattr(_native, "library", real)
    lib = _native.library()
    assert api is not None and lib is not None
    fd = os.open(wfile, os.O_RDONLY)
    slots = _native.LaneSlots(len(copiers), 2, slot)
    try:
        n = _native.run_lanes_native(lib, api, fd, copies, apart, copiers, slots=slots, stages={})
    finally:
        os.close(fd)
        slots.close(copiers)
    assert n == expected
    assert all(same_bytes(part[k], src[k]) for k in chosen)
    assert not any(same_bytes(part[k], src[k]) for k in src if k not in chosen and src[k].numel()), "nothing else"


def test_weights_native_lanes_refuse_a_copy_outside_their_spans(wfile: Path) -> None:
    from stasis_engine.weights._copier import HostCopier
    from stasis_engine.weights._plan import Copy

    lib = _native.library()
    assert lib is not None
    target = bytearray(8192)
    address = ctypes.addressof((ctypes.c_char * 8192).from_buffer(target))
    fd = os.open(wfile, os.O_RDONLY)
    copiers = [HostCopier()]
    api = copiers[0].native_api()
    assert api is not None
    try:
        for copies, spans in (
            ([Copy(8192, address, 4096)], [(0, 4096)]),  # outside
            ([Copy(4096, address, 4096), Copy(0, address + 4096, 4096)], [(0, 8192)]),
        ):  # unsorted
            slots = _native.LaneSlots(1, 2, 4096)
            with pytest.raises(StasisEngineError, match="planning the lanes' windows failed"):
                _native.run_lanes_native(lib, api, fd, copies, spans, copiers, slots=slots, stages={})
            slots.close(copiers)
    finally:
        os.close(fd)
    assert target == bytearray(8192), "nothing read"


@pytest.mark.parametrize(
    ("name", "value"), [("lane_slots", 1), ("lane_mb", 0), ("lane_slots", 2.5), ("lane_slots", 65)]
)
def test_weights_lanes_geometry_is_checked(wfile: Path, src: dict[str, torch.Tensor], name: str, value: object) -> None:
    with pytest.raises(StasisEngineError, match=name):
        load_into(poisoned_like(src), wfile, method="lanes", **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_weights_gate_comes_once_before_any_byte_and_its_wait_is_not_the_loads(
    wfile: Path, src: dict[str, torch.Tensor], method: str
) -> None:
    """``gate`` (the stager's hold waits there) is called once, with the load set up and nothing of the targets
    written yet; its time is ``stages["gate"]``, outside ``seconds``. A gate that raises ends the load, nothing
    written."""
    from stasis_engine.weights._targets import from_source
    from stasis_engine.weights.load import load_targets

    fresh = poisoned_like(src)
    before = snapshot(fresh)
    calls: list[bool] = []

    def gate() -> None:
        calls.append(all(same_bytes(fresh[k], before[k]) for k in fresh))
        threading.Event().wait(0.2)

    kind, tlist, dev = from_source(fresh, "cpu")
    stats = load_targets(kind, tlist, dev, wfile, LoadTuning(method=method, **SMALL), gate=gate)
    assert calls == [True], "once, before any byte"
    assert all(same_bytes(fresh[k], src[k]) for k in src)
    assert stats.stages["gate"] >= 0.2 and stats.seconds < 0.2

    def refuse() -> None:
        raise StasisEngineError("stage_timeout", "no go")

    again = poisoned_like(src)
    kept = snapshot(again)
    kind, tlist, dev = from_source(again, "cpu")
    with pytest.raises(StasisEngineError, match="no go"):
        load_targets(kind, tlist, dev, wfile, LoadTuning(method=method, **SMALL), gate=refuse)
    assert all(same_bytes(again[k], kept[k]) for k in again)


def test_weights_auto_chooses_by_a_residency_the_caller_measured(wfile: Path) -> None:
    """``load_targets(resident=...)`` (the stager measures it for its own choices): "auto" chooses by that
    fraction, without measuring the file again; the file here is in the page cache, the fraction says otherwise."""
    from stasis_engine.weights._copier import HostCopier
    from stasis_engine.weights._targets import Device
    from stasis_engine.weights.load import _choose, _pin_ahead

    header = read_header(wfile)
    assert _choose(wfile, header, [], "cuda", 0.0) == ("direct", 0.0)
    assert _choose(wfile, header, [], "cuda", 0.5) == ("pinned-ring", 0.5)
    assert _choose(wfile, header, [], "cuda", 1.0) == ("lanes", 1.0)
    opened: list[object] = []
    cuda = Device("cuda", 0)
    assert _pin_ahead(wfile, "auto", cuda, HostCopier(), 2, 2, 4096, 0.0, opened, None) == (None, 0.0), "cold: none"
    assert opened == [], "no lane copiers opened for a load that will not run lanes"


def test_weights_lanes_pin_their_own_slots_when_the_pinning_thread_cannot_start(wfile: Path) -> None:
    """``LaneSlots.pin_ahead`` whose C thread does not start (pthread_create failing, as with too many threads):
    nothing is pinned ahead and nothing is left to join; the lane pins its own slots and reads the same bytes."""
    from stasis_engine.weights._copier import HostCopier

    class NoThreads:
        def stasis_lanes_pin_start(self, *_: object) -> int:
            return 11  # EAGAIN

    api = HostCopier().native_api()
    assert api is not None
    slots = _native.LaneSlots(1, 2, 4096)
    slots.pin_ahead(NoThreads(), api)
    assert not slots.ahead and slots.pinned() == []
    n, target, extent = _one_lane_over_the_largest_extent(wfile, slots)
    assert n == -(-extent.size // 4096)
    with open(wfile, "rb") as f:
        f.seek(extent.offset)
        assert bytes(target) == f.read(extent.size)
    assert slots.pinned() == []
