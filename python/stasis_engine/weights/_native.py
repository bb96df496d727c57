"""The lanes loop in C (``_lanes.c``, built into ``_lanes.so`` by scripts/python-env.sh), through ctypes.

``run_lanes_native`` does what ``_pipelines.run_lanes`` does, with the loop itself in C threads that never take
Python's lock. Python maps the slots' memory (``LaneSlots``, which can start pinning them ahead of the run) and
makes the streams and events; each C lane pins what was not pinned ahead and unpins its own slots; Python drains and
releases whatever a failed lane left, under the same invariants as the Python loop.
``library()`` is None where the helper is not built: the caller then runs the Python
loop.
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

from ..errors import StasisEngineError
from . import _libc
from ._copier import Copier
from ._pipelines import Stages, cleanup
from ._plan import Copy

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lanes.so")

_i32, _i64, _vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p


class Job(ctypes.Structure):
    """``struct stasis_lanes_job`` of _lanes.c."""

    _fields_ = [
        ("fd", _i32),
        ("api", _i32),
        ("nwin", _i32),
        ("nlanes", _i32),
        ("nslots", _i32),
        ("ncopies", _i32),
        ("nspans", _i32),
        ("ahead", _i32),
        ("slot_bytes", _i64),
        ("copies", _vp),
        ("spans", _vp),
        ("slots", _vp),
        ("streams", _vp),
        ("events", _vp),
        ("copy", _vp),
        ("record", _vp),
        ("sync", _vp),
        ("init", _vp),
        ("pin", _vp),
        ("unpin", _vp),
        ("stream_sync", _vp),
        ("init_arg", ctypes.c_ssize_t),
        ("lane_stats", _vp),
        ("error", _vp),
        ("pin_state", _vp),
        ("pin_error", _vp),
    ]


class PinJob(ctypes.Structure):
    """``struct stasis_lanes_pin_job`` of _lanes.c."""

    _fields_ = [
        ("api", _i32),
        ("nlanes", _i32),
        ("nslots", _i32),
        ("threads", _i32),
        ("slot_bytes", _i64),
        ("base", _vp),
        ("init", _vp),
        ("pin", _vp),
        ("init_arg", ctypes.c_ssize_t),
        ("pin_state", _vp),
        ("pin_error", _vp),
        ("stop", _vp),
        ("pin_times", _vp),
    ]


_PIN_FREE, _PIN_DONE = 0, 2  # a slot's pin states (PIN_* in _lanes.c): not pinned, pinned


_ERRORS = {
    3: "copy",
    4: "event record",
    5: "event wait",
    6: "setting the lane's device",
    8: "pinning the lane's slots",
    9: "unpinning the lane's slots",
}
_ERR_PLAN = 10
_loaded: Any = None


def library() -> Any:
    """The loaded helper, or None (not built, not loadable): the lanes then run their Python loop. (The tests and
    bench/weights_bench.py run that loop where the helper is built by replacing this function.)"""
    global _loaded
    if _loaded is None:
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError:
            return None
        lib.stasis_lanes_run.argtypes = [ctypes.POINTER(Job)]
        lib.stasis_lanes_run.restype = ctypes.c_int
        try:
            lib.stasis_lanes_pin_start.argtypes = [ctypes.POINTER(PinJob), ctypes.POINTER(ctypes.c_uint64)]
            lib.stasis_lanes_pin_start.restype = ctypes.c_int
            lib.stasis_lanes_pin_join.argtypes = [ctypes.c_uint64]
            lib.stasis_lanes_pin_join.restype = ctypes.c_int
        except AttributeError:  # built from an older _lanes.c: rebuild (scripts/python-env.sh)
            return None
        _loaded = lib
    return _loaded


MAX_LANES, MAX_SLOTS = 256, 64  # MAX_LANES, MAX_SLOTS in _lanes.c: the most lanes and slots per lane it runs
_HUGE = 2 << 20
PINNERS = 4  # threads pinning the lanes' slots ahead. Why: docs/decisions/0006-weights-lanes.md
# Values per lane in the job's lane_stats (LANE_STATS in _lanes.c): ns reading, ns waiting for a slot, windows, then
# ns since the run began when the lane's first slot was pinned, its last copy issued, its stream drained and its
# slots unpinned (whether they still are pinned is their pin state, LaneSlots.pinned).
LANE_STATS = 7
_TIMELINE = (("pinned_max", 3), ("issued_max", 4), ("drained_max", 5), ("unpinned_max", 6))


class LaneSlots:
    """The lanes' slots: one mapping, aligned to 2 MiB and advised for huge pages, lane ``i``'s slot ``s`` at
    ``slot(i, s)``, with a pin state per slot shared with the C lanes. ``pin_ahead`` starts pinning them on a few C
    threads (without Python's lock), every lane's first slot first, for a caller that still has checks to make
    before the run: faulting the fresh memory in is most of the cost (docs/decisions/0006-weights-lanes.md), and a
    lane starts on its first slot. Whatever is still pinned at ``close`` (a failed or cancelled load) is unpinned
    there, after the copiers' streams have drained; nothing of it outlives the load."""

    def __init__(self, nlanes: int, slots: int, slot_bytes: int) -> None:
        self.nlanes, self.slots, self.slot_bytes = nlanes, slots, slot_bytes
        self.lane_bytes = slots * slot_bytes
        self._span = nlanes * self.lane_bytes + _HUGE
        self._mapping = _libc.map_anonymous(self._span)
        self.base = -(-self._mapping // _HUGE) * _HUGE
        self.state = (_i32 * (nlanes * slots))()
        self.error = (_i64 * (nlanes * slots))()
        self.times = (_i64 * (3 * nlanes))()  # per lane: when its pinner began, had its first slot, all it took (ns)
        self.ahead = False
        self._stop = _i32(0)
        self._pin_job: PinJob | None = None
        self._lib: Any = None
        self._thread: int | None = None  # the pinning's C thread, until joined

    def lane(self, i: int) -> int:
        return self.base + i * self.lane_bytes

    def slot(self, i: int, s: int) -> int:
        return self.lane(i) + s * self.slot_bytes

    def pin_ahead(self, lib: Any, api: tuple[int, ...]) -> None:
        """Starts pinning every lane's slots, first slots first, on ``PINNERS`` C threads (at most one per lane;
        ``api``: a copier's ``native_api``), started in C: a Python thread would first wait for Python's lock, which
        the caller holds while it checks the load. If the thread cannot be
        started nothing is pinned ahead: each lane pins its own slots when the run begins."""
        self._pin_job = PinJob(
            api[0],
            self.nlanes,
            self.slots,
            min(PINNERS, self.nlanes),
            self.slot_bytes,
            self.base,
            api[4],
            api[5],
            api[8],
            ctypes.addressof(self.state),
            ctypes.addressof(self.error),
            ctypes.addressof(self._stop),
            ctypes.addressof(self.times),
        )
        thread = ctypes.c_uint64(0)
        if lib.stasis_lanes_pin_start(ctypes.byref(self._pin_job), ctypes.byref(thread)) == 0:
            self._lib, self._thread, self.ahead = lib, thread.value, True

    def _unpin(self, copier: Copier, i: int, s: int) -> None:
        copier.unpin(self.slot(i, s))
        self.state[i * self.slots + s] = _PIN_FREE

    def pin_span(self, since_ns: int) -> dict[str, float]:
        """Seconds from ``since_ns`` (CLOCK_MONOTONIC) to when the pinning ahead began (``pins_began``), had pinned
        the last of the first slots it pinned (``pins_first``) and the last slot (``pins_done``); a time no lane's
        pinner reached (a lane that pinned its first slot itself) is left out."""
        out = {}
        for name, f, k in (("pins_began", min, 0), ("pins_first", max, 1), ("pins_done", max, 2)):
            times = [self.times[3 * i + k] for i in range(self.nlanes) if self.times[3 * i + k]]
            if times:
                out[name] = (f(times) - since_ns) / 1e9
        return out

    def pinned(self) -> list[tuple[int, int]]:
        """The slots (lane, slot) pinned now."""
        return [
            (i, s) for i in range(self.nlanes) for s in range(self.slots) if self.state[i * self.slots + s] == _PIN_DONE
        ]

    def close(self, copiers: list[Copier]) -> None:
        """Stops the pinning ahead, drains ``copiers`` (one per lane: the unpinning one), unpins what is still pinned
        and unmaps. Raises the first failure, after trying every step."""
        self._stop.value = 1
        if self._thread is not None:
            # The pin states change no more after this (the run's lanes are joined too).
            self._lib.stasis_lanes_pin_join(self._thread)
            self._thread = None
        # Unpinning is a call of the runtime the copiers share: any one of them makes it.
        unpins = [lambda i=i, s=s: self._unpin(copiers[0], i, s) for i, s in self.pinned()] if copiers else []
        cleanup(
            [*[c.synchronize for c in copiers], *unpins, lambda: _libc.unmap(self._mapping, self._span)],
            raise_errors=True,
        )


def run_lanes_native(
    lib: Any,
    api: tuple[int, ...],
    fd: int,
    copies: list[Copy],
    spans: list[tuple[int, int]],
    copiers: list[Copier],
    *,
    slots: LaneSlots,
    stages: Stages,
) -> int:
    """Runs the lanes over ``slots`` (one lane per copier; the caller made them, and may have started pinning them
    ahead, and closes them after). The windows (of ``slot_bytes`` over ``spans``, with the pieces of ``copies``:
    sorted, disjoint) are made in C. Returns how many windows were read."""
    if not copies:
        return 0
    if slots.nlanes != len(copiers):
        raise StasisEngineError("bad_argument", f"{slots.nlanes} lanes of slots for {len(copiers)} copiers")
    t = time.perf_counter()
    lane_stats = (_i64 * (LANE_STATS * len(copiers)))()
    ring = [slots.lane(i) + k * slots.slot_bytes for i in range(len(copiers)) for k in range(slots.slots)]
    events = [e for c in copiers for e in c.events(slots.slots)]
    error = (_i64 * 3)()
    arrays = (
        (_i64 * (3 * len(copies)))(*[v for c in copies for v in (c.offset, c.address, c.size)]),
        (_i64 * (2 * len(spans)))(*[v for span in spans for v in span]),
        (_vp * len(ring))(*ring),
        (_vp * len(copiers))(*[c.stream_handle() for c in copiers]),
        (_vp * len(events))(*events),
    )
    job = Job(
        fd,
        api[0],
        0,
        len(copiers),
        slots.slots,
        len(copies),
        len(spans),
        int(slots.ahead),
        slots.slot_bytes,
        *[ctypes.addressof(a) for a in arrays],
        *api[1:],
        ctypes.addressof(lane_stats),
        ctypes.addressof(error),
        ctypes.addressof(slots.state),
        ctypes.addressof(slots.error),
    )
    stages["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    rc = lib.stasis_lanes_run(ctypes.byref(job))
    stages["pipeline"] = time.perf_counter() - t
    lanes = range(len(copiers))
    stages["read_max"] = max(lane_stats[LANE_STATS * i] for i in lanes) / 1e9
    stages["slot_wait_max"] = max(lane_stats[LANE_STATS * i + 1] for i in lanes) / 1e9
    for name, k in _TIMELINE:  # when the last lane got there, from the pipeline's start
        stages[name] = max(lane_stats[LANE_STATS * i + k] for i in lanes) / 1e9
    if rc:
        raise _failure(error[0], error[1], error[2])
    return int(job.nwin)


def _failure(what: int, code: int, offset: int) -> StasisEngineError:
    where = f" (window at file offset {offset})" if offset >= 0 else ""
    if what == 1:
        return StasisEngineError("weights_io", f"pread failed: {os.strerror(code)}{where}")
    if what == 2:
        return StasisEngineError(
            "weights_truncated",
            f"end of file at offset {code}{where}",
            hint="the file shrank during the load; the targets are partially written, load again",
        )
    if what == 7:
        return StasisEngineError(
            "weights_io",
            f"starting a lane thread failed: {os.strerror(code)}",
            hint="too many threads for this process? pass fewer (threads=...)",
        )
    if what == _ERR_PLAN:
        return StasisEngineError("bad_argument", f"planning the lanes' windows failed: {os.strerror(code)}")
    return StasisEngineError(
        "cuda_error", f"{_ERRORS.get(what, 'lane')} failed: CUDA error {code}{where}", details={"cuda_error": code}
    )
