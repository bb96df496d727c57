"""``load_into``: refill existing memory (GPU or CPU tensors, raw GPU extents) in place from a weights file."""

from __future__ import annotations

import functools
import mmap
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import StasisEngineError
from . import _libc, _native
from ._copier import open_copier
from ._native import run_lanes_native
from ._pipelines import cleanup, run_lanes, run_reads, run_ring
from ._plan import Copy, coalesce, spans, windows
from ._targets import Device, Target, check_overlaps, from_source, match
from .checksum import default_threads, verify_records
from .format import Header, read_header
from .stats import LoadStats

METHODS = ("auto", "pinned-ring", "lanes", "direct", "cpu")
# What "auto" picks for GPU targets, by how much of the file the page cache holds (sampled with mincore).
# >= HOT_RESIDENCY resident: lanes, every thread reading 4 MiB windows into its own two pinned slots and issuing
# their copies on its own stream (the loop in C, _lanes.c). Why: docs/decisions/0006-weights-lanes.md.
AUTO_HOT = "lanes"
DEFAULT_LANES = 10  # lanes when the caller names no thread count. Why: docs/decisions/0006-weights-lanes.md
AUTO_COLD = "direct"  # <= COLD_RESIDENCY resident: O_DIRECT reads, no page-cache round trip
AUTO_MIXED = "pinned-ring"  # in between: buffered reads take what is cached and read the rest
HOT_RESIDENCY, COLD_RESIDENCY = 0.98, 0.02
# The ring's slots (of 16 MiB; "direct" and "pinned-ring"). Why: docs/decisions/0007-weights-cold-and-stager.md.
RING_SLOTS = 8
_MIB = 1 << 20


@dataclass(frozen=True)
class LoadTuning:
    """How a load reads the file and copies it: ``method`` (see ``load_into``) and its sizes, checked as it is made
    (``StasisEngineError("bad_argument")`` naming the field and what was expected).

    ``threads``: the readers (lanes), default the machine's (at most ``DEFAULT_LANES`` for lanes); ``ring_slots`` x
    ``slot_mb`` MiB pinned ring read in ``read_mb`` MiB preads ("pinned-ring", "direct"); every lane reads windows
    of ``lane_mb`` MiB into its own ``lane_slots`` pinned slots ("lanes").

    Example::

        load_targets(kind, targets, Device("cpu"), path, LoadTuning(method="cpu", threads=16))
    """

    method: str = "auto"
    threads: int | None = None
    ring_slots: int = RING_SLOTS
    slot_mb: int = 16
    read_mb: int = 4
    lane_slots: int = 2
    lane_mb: int = 4

    def __post_init__(self) -> None:
        _check_options(self)


def load_into(
    targets: Any,
    path: str | os.PathLike[str],
    *,
    method: str = "auto",
    verify: bool = False,
    threads: int | None = None,
    device: Any = None,
    strict: bool = True,
    ring_slots: int = RING_SLOTS,
    slot_mb: int = 16,
    read_mb: int = 4,
    lane_slots: int = 2,
    lane_mb: int = 4,
) -> LoadStats:
    """Refill ``targets`` in place from ``path``; nothing is written unless every check passes.

    ``targets``: a mapping name -> torch.Tensor (contiguous, one device), or a sequence of ``Extent`` in the
    memory of ``device`` (default: the current CUDA device; "cpu" for host memory). Checked before any byte is
    written: the file (exists, prefix, header checksum, length), every target against its extent (present,
    size, dtype, shape; with ``strict`` every extent has a target), raw GPU extents are mapped memory of the
    device, and with ``verify=True`` every extent's checksum (a separate pass before the load).

    ``method``: "auto" (GPU: lanes when the file is in the page cache, direct when it is not, pinned-ring in
    between; CPU: cpu), "pinned-ring", "lanes" (every thread reads windows of ``lane_mb`` MiB into its own
    ``lane_slots`` pinned slots and copies them on its own stream), "direct" (O_DIRECT into the ring; buffered where
    O_DIRECT is unsupported), or "cpu" (host targets only). Tuning: ``ring_slots`` x ``slot_mb`` MiB pinned ring
    read in ``read_mb`` MiB preads.

    Example::

        stats = load_into(dict(model.named_parameters()), "/snap/weights.stasisw")
        print(f"{stats.gbps:.1f} GB/s via {stats.method}")
    """
    start = time.perf_counter()
    tuning = LoadTuning(method, threads, ring_slots, slot_mb, read_mb, lane_slots, lane_mb)
    kind, tlist, dev = from_source(targets, device)
    return load_targets(kind, tlist, dev, path, tuning, verify=verify, strict=strict, started=start)


def load_targets(
    kind: str,
    tlist: list[Target],
    dev: Device,
    path: str | os.PathLike[str],
    tuning: LoadTuning | None = None,
    *,
    verify: bool = False,
    strict: bool = True,
    runtime: Any = None,
    started: float | None = None,
    gate: Callable[[], Any] | None = None,
    resident: float | None = None,
) -> LoadStats:
    """``load_into`` for targets already resolved (``kind`` "tensors" or "extents"), read and copied as ``tuning``
    says; ``runtime``: the CUDA calls to make (default: the runtime torch loaded; the stager passes a driver-API one,
    _cudadrv.DriverRuntime).

    ``gate``: called once everything but the reads of the weights is done (the file checked and opened, the
    method chosen, the pinned ring allocated), right before the first read: the stager's hold waits there for its
    go, so that nothing of the load's own set-up is left to delay the reads after it. Its time is ``stages["gate"]``
    and is not counted in ``seconds``. ``resident``: the fraction of the file in the page cache, where the caller
    has just measured it (the stager has); "auto" then chooses by it instead of measuring again."""
    start = started if started is not None else time.perf_counter()
    start_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - round((time.perf_counter() - start) * 1e9)  # the C clock
    gated = _Gate(gate)
    tuning = tuning or LoadTuning()
    method, threads, lane_slots, lane_mb = tuning.method, tuning.threads, tuning.lane_slots, tuning.lane_mb
    if method == "cpu" and dev.kind != "cpu":
        raise StasisEngineError("bad_argument", f'method "cpu" is for host targets, these are on {dev}')
    check_overlaps(tlist)
    t = time.perf_counter()
    copier = open_copier(dev.kind, dev.index, runtime)
    open_s = time.perf_counter() - t
    stats: LoadStats | None = None
    slots: _native.LaneSlots | None = None
    lane_copiers: list[Any] = []
    fd = -1
    pool: ThreadPoolExecutor | None = None
    ok = False
    try:
        # Lanes are likely (asked for, or "auto" on a GPU with the file in the page cache): their slots start being
        # pinned now, beside the checks below, not after them.
        nlanes = threads or min(DEFAULT_LANES, default_threads())
        t = time.perf_counter()
        slots, early_resident = _pin_ahead(
            path, method, dev, copier, nlanes, lane_slots, lane_mb * _MIB, resident, lane_copiers, runtime
        )
        pin_ahead_s = time.perf_counter() - t
        t = time.perf_counter()
        header = read_header(path)
        header_s = time.perf_counter() - t
        pairs = match(header, kind, tlist, path, strict)
        nthreads = threads or default_threads()
        stats = LoadStats(sum(r.size for r, _ in pairs), 0.0, method, nthreads, extents=len(pairs))
        stats.stages["open"] = open_s
        if slots is not None:
            stats.stages["pin_ahead"] = pin_ahead_s
        stats.stages["header"] = header_s
        copies = coalesce([Copy(r.offset, t.address, r.size, t.group) for r, t in pairs])
        stats.copies = len(copies)
        # Raw extents are the engine's memory, which a sleeping engine has unmapped: check it is there. A caller
        # with a runtime of its own (the stager) loads into memory it has just created and mapped itself.
        if dev.kind == "cuda" and kind == "extents" and runtime is None:
            _check_mapped(copier, tlist, path)
        stats.stages["validate"] = time.perf_counter() - start
        if verify:
            t = time.perf_counter()
            verify_records(path, [r for r, _ in pairs], threads=nthreads)
            stats.stages["verify"] = time.perf_counter() - t
        chosen = method
        if method == "auto":
            t = time.perf_counter()
            chosen, stats.residency = _choose(path, header, copies, dev.kind, early_resident)
            stats.stages["choose"] = time.perf_counter() - t
        stats.method = chosen
        if chosen == "lanes" and threads is None:
            nthreads = stats.threads = min(DEFAULT_LANES, nthreads)
        if slots is not None and chosen != "lanes":  # the file was not as cached as it looked: no lanes
            slots.close([copier])
            slots = None
        fd = _open(path, chosen, stats.notes)
        pool = ThreadPoolExecutor(nthreads, thread_name_prefix="stasis-load", initializer=copier.thread_init)
        if chosen not in ("pinned-ring", "direct"):  # the ring's gate is after its allocation, in run_ring
            gated()
        if chosen == "cpu":
            run_reads(fd, copies, pool, tuning.read_mb * _MIB, stats.stages)
        elif chosen == "lanes":
            t = time.perf_counter()
            while len(lane_copiers) < nthreads - 1:  # a stream (and events) per lane, unless opened with the slots
                lane_copiers.append(open_copier(dev.kind, dev.index, runtime, synchronize=False))
            stats.stages["open_lanes"] = time.perf_counter() - t
            lanes = [copier, *lane_copiers]
            if slots is None and _native.library() is not None and copier.native_api() is not None:
                slots = _native.LaneSlots(
                    len(lanes), lane_slots, lane_mb * _MIB
                )  # not pinned ahead: each lane pins its own
            stats.stages["lanes_at"] = time.perf_counter() - start
            stats.windows = _run_lanes(
                fd, copies, header.file_size, lanes, pool, slots, lane_slots, lane_mb, stats.stages, stats.notes
            )
        else:
            wins = windows(copies, header.file_size, tuning.slot_mb * _MIB)
            stats.windows = len(wins)
            run_ring(
                fd,
                wins,
                copier,
                pool,
                slots=tuning.ring_slots,
                slot_bytes=tuning.slot_mb * _MIB,
                read_bytes=min(tuning.read_mb, tuning.slot_mb) * _MIB,
                stages=stats.stages,
                gate=gated,
            )
        if slots is not None:
            stats.stages.update(slots.pin_span(start_ns))  # since the load's start
        ok = True
    finally:
        t = time.perf_counter()
        # Invariant: no thread, fd, stream, event or pinned slot of the load outlives it (the process is
        # checkpointed later). The lanes' slots go after their streams drained and before the streams do.
        steps: list[Callable[[], Any]] = [
            functools.partial(p.shutdown, wait=True, cancel_futures=True) for p in (pool,) if p is not None
        ]
        if fd >= 0:
            steps.append(lambda: os.close(fd))
        if slots is not None:
            steps.append(functools.partial(_free_slots, slots, [copier, *lane_copiers], stats))
        # In reverse order of opening (each restores the device that was current before it), every one even if
        # one fails.
        steps += [c.close for c in reversed([copier, *lane_copiers])]
        cleanup(steps, raise_errors=ok)  # a failure of the load itself is the one to report
        if stats is not None:
            stats.stages["close"] = time.perf_counter() - t
    if gated.seconds is not None:
        stats.stages["gate"] = gated.seconds
    stats.seconds = time.perf_counter() - start - (gated.seconds or 0.0)
    return stats


def _run_lanes(
    fd: int,
    copies: list[Copy],
    file_size: int,
    lanes: list[Any],
    pool: ThreadPoolExecutor,
    slots: _native.LaneSlots | None,
    lane_slots: int,
    lane_mb: int,
    stages: dict[str, float],
    notes: list[str],
) -> int:
    """The lanes over ``copies``: the C loop over ``slots`` (it makes the windows itself), or the Python loop where
    _lanes.so is not built or is off (``slots`` None). Returns how many windows were read."""
    if slots is not None:
        api = lanes[0].native_api()  # every lane's copier is of one kind, on one runtime
        return run_lanes_native(
            _native.library(), api, fd, copies, spans(copies, file_size), lanes, slots=slots, stages=stages
        )
    notes.append("lanes: the Python loop (the C loop, _lanes.so, is not built or is off)")
    wins = windows(copies, file_size, lane_mb * _MIB)
    run_lanes(fd, wins, lanes, pool, slots=lane_slots, slot_bytes=lane_mb * _MIB, stages=stages)
    return len(wins)


def _free_slots(slots: _native.LaneSlots, lanes: list[Any], stats: LoadStats | None) -> None:
    t = time.perf_counter()
    slots.close(lanes)
    if stats is not None:
        stats.stages["free"] = time.perf_counter() - t


def _pin_ahead(
    path: Any,
    method: str,
    dev: Device,
    copier: Any,
    nlanes: int,
    lane_slots: int,
    slot_bytes: int,
    resident: float | None,
    lane_copiers: list[Any],
    runtime: Any,
) -> tuple[_native.LaneSlots | None, float | None]:
    """The lanes' slots, already being pinned (``LaneSlots.pin_ahead``), where the load will likely run the C lanes:
    asked for, or "auto" on a GPU with the file in the page cache (then also that fraction, which "auto" then
    chooses by; ``resident``: the caller's measurement of it). ``(None, resident)`` otherwise, and for a file that
    cannot be read (its checks say why). The other lanes' copiers, with their streams and events, are opened into
    ``lane_copiers`` before the pinning starts. Why: docs/decisions/0006-weights-lanes.md."""
    if method not in ("lanes", "auto") or (method == "auto" and dev.kind != "cuda"):
        return None, resident
    lib, api = _native.library(), copier.native_api()
    if lib is None or api is None:
        return None, resident
    if method == "auto":
        if resident is None:
            try:
                resident = file_resident(path)
            except OSError:
                return None, None
        if resident is None or resident < HOT_RESIDENCY:
            return None, resident
    for _ in range(nlanes - 1):
        lane_copiers.append(open_copier(dev.kind, dev.index, runtime, synchronize=False))
    for c in (copier, *lane_copiers):
        c.events(lane_slots)
    slots = _native.LaneSlots(nlanes, lane_slots, slot_bytes)
    slots.pin_ahead(lib, api)
    return slots, resident


class _Gate:
    """``gate`` called at most once, its time kept in ``seconds`` (None until called)."""

    def __init__(self, gate: Callable[[], Any] | None) -> None:
        self.gate = gate
        self.seconds: float | None = None

    def __call__(self) -> None:
        if self.seconds is not None:
            return
        t = time.perf_counter()
        try:
            if self.gate is not None:
                self.gate()
        finally:
            self.seconds = time.perf_counter() - t


def _check_options(t: LoadTuning) -> None:
    method, threads = t.method, t.threads
    if method not in METHODS:
        raise StasisEngineError("bad_argument", f"method={method!r}, expected one of {', '.join(METHODS)}")
    # The C lanes run at most MAX_LANES lanes of MAX_SLOTS slots (_lanes.c): refused here with the limits named, not as
    # a failed thread start once the load has begun.
    sizes = (
        ("ring_slots", t.ring_slots, 2, None),
        ("slot_mb", t.slot_mb, 1, None),
        ("read_mb", t.read_mb, 1, None),
        ("lane_slots", t.lane_slots, 2, _native.MAX_SLOTS),
        ("lane_mb", t.lane_mb, 1, None),
    )
    for name, value, low, high in sizes:
        if not isinstance(value, int) or value < low or (high is not None and value > high):
            expected = f"between {low} and {high}" if high is not None else f">= {low}"
            raise StasisEngineError("bad_argument", f"{name}={value!r}, expected an integer {expected}")
    if threads is not None and (not isinstance(threads, int) or not 1 <= threads <= _native.MAX_LANES):
        raise StasisEngineError(
            "bad_argument", f"threads={threads!r}, expected an integer between 1 and {_native.MAX_LANES}"
        )


def _check_mapped(copier: Any, tlist: list[Any], path: Any) -> None:
    for t in tlist:
        problem = copier.target_problem(t.address, t.size) if t.size else None
        if problem:
            raise StasisEngineError(
                "weights_target",
                f"{path}: extent {t.label}: {problem}",
                hint="wake the weights first (POST /wake_up?tags=weights) so their memory is mapped",
            )


def _choose(
    path: Any, header: Header, copies: list[Copy], device_kind: str, resident: float | None = None
) -> tuple[str, float | None]:
    """The method "auto" runs, and the file's resident fraction (``resident``: already measured, over the whole
    file; else measured here over the ranges the load reads)."""
    if device_kind == "cpu":
        return "cpu", None
    if resident is None:
        resident = resident_fraction(path, header.file_size, [(s, e - s) for s, e in spans(copies, header.file_size)])
    if resident is None:
        return AUTO_MIXED, None
    if resident >= HOT_RESIDENCY:
        return AUTO_HOT, resident
    return (AUTO_COLD if resident <= COLD_RESIDENCY else AUTO_MIXED), resident


def file_resident(path: Any) -> float | None:
    """Sampled fraction of the whole file in the page cache (None for an empty file, or where mincore cannot tell);
    OSError where the file cannot be opened."""
    size = os.stat(path).st_size
    return resident_fraction(path, size, [(0, size)]) if size > 0 else None


def resident_fraction(path: Any, size: int, ranges: list[tuple[int, int]]) -> float | None:
    """Sampled fraction of ``ranges`` (offset, length) of the file's first ``size`` bytes in the page cache
    (None where mincore cannot tell)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        base = _libc.map_file(fd, size)
        try:
            return _libc.resident_fraction(base, ranges)
        finally:
            _libc.unmap(base, size)
    finally:
        os.close(fd)


def _open(path: Any, method: str, notes: list[str]) -> int:
    if method != "direct":
        return os.open(path, os.O_RDONLY)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        notes.append(f"O_DIRECT unsupported here ({e.strerror}); buffered reads")
        return os.open(path, os.O_RDONLY)
    probe = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        os.preadv(fd, [probe], 0)
    except OSError as e:
        os.close(fd)
        notes.append(f"O_DIRECT reads fail here ({e.strerror}); buffered reads")
        return os.open(path, os.O_RDONLY)
    finally:
        probe.close()
    return fd
