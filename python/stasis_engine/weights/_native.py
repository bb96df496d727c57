"""The lanes loop in C (``_lanes.c``, built into ``_lanes.so`` by scripts/python-env.sh), through ctypes.

``run_lanes_native`` does what ``_pipelines.run_lanes`` does, with the loop itself in C threads that never take
Python's lock. Python maps the slots' memory and makes the streams and events; each C lane pins and unpins its
own slots; Python drains and releases whatever a failed lane left, under the same invariants as the Python loop.
``library()`` is None where the helper is not built (or STASIS_NATIVE_LANES=0): the caller then runs the Python
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
        ("fd", _i32), ("api", _i32), ("nwin", _i32), ("nlanes", _i32), ("nslots", _i32), ("ncopies", _i32),
        ("nspans", _i32), ("_pad", _i32),
        ("slot_bytes", _i64), ("copies", _vp), ("spans", _vp), ("slots", _vp), ("streams", _vp), ("events", _vp),
        ("copy", _vp), ("record", _vp), ("sync", _vp), ("init", _vp), ("pin", _vp), ("unpin", _vp),
        ("stream_sync", _vp), ("init_arg", ctypes.c_ssize_t), ("lane_stats", _vp), ("error", _vp),
    ]


_ERRORS = {3: "copy", 4: "event record", 5: "event wait", 6: "setting the lane's device", 8: "pinning the lane's slots",
           9: "unpinning the lane's slots"}
_ERR_PLAN = 10
_loaded: Any = None


def library() -> Any:
    """The loaded helper, or None (not built, not loadable, or STASIS_NATIVE_LANES=0)."""
    global _loaded
    if os.environ.get("STASIS_NATIVE_LANES", "1") == "0":
        return None
    if _loaded is None:
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError:
            return None
        lib.stasis_lanes_run.argtypes = [ctypes.POINTER(Job)]
        lib.stasis_lanes_run.restype = ctypes.c_int
        _loaded = lib
    return _loaded


_HUGE = 2 << 20
# Values per lane in the job's lane_stats (LANE_STATS in _lanes.c): ns reading, ns waiting for a slot, windows,
# slots still pinned (0/1), then ns since the run began when the lane's slots were pinned, its last copy issued, its
# stream drained and its slots unpinned.
LANE_STATS = 8
_TIMELINE = (("pinned_max", 4), ("issued_max", 5), ("drained_max", 6), ("unpinned_max", 7))


def run_lanes_native(
    lib: Any, api: tuple[int, ...], fd: int, copies: list[Copy], spans: list[tuple[int, int]], copiers: list[Copier], *,
    slots: int, slot_bytes: int, stages: Stages,
) -> int:
    """Every lane's slots are one mapping here, aligned to 2 MiB and advised for huge pages; each lane faults in
    and pins its own part when it starts and unpins it when its copies are done (in C), so no lane waits for all
    of them to be pinned (on the H100 the driver serializes registrations, ~0.7 ms a call, and one thread faults
    fresh memory at 1-5 GB/s). Whatever a failed lane left pinned is unpinned here once its stream has drained.
    The windows (of ``slot_bytes`` over ``spans``, with the pieces of ``copies``: sorted, disjoint) are made in C.
    Returns how many windows were read."""
    if not copies:
        return 0
    t = time.perf_counter()
    lane_bytes = slots * slot_bytes
    total = len(copiers) * lane_bytes
    span = total + _HUGE
    mapping = _libc.map_anonymous(span)
    base = -(-mapping // _HUGE) * _HUGE
    lane_stats = (_i64 * (LANE_STATS * len(copiers)))()
    ran = ok = False
    nwin = 0
    try:
        ring = [base + i * slot_bytes for i in range(len(copiers) * slots)]
        events = [e for c in copiers for e in c.events(slots)]
        error = (_i64 * 3)()
        arrays = ((_i64 * (3 * len(copies)))(*[v for c in copies for v in (c.offset, c.address, c.size)]),
                  (_i64 * (2 * len(spans)))(*[v for span in spans for v in span]), (_vp * len(ring))(*ring),
                  (_vp * len(copiers))(*[c.stream_handle() for c in copiers]), (_vp * len(events))(*events))
        job = Job(fd, api[0], 0, len(copiers), slots, len(copies), len(spans), 0, slot_bytes,
                  *[ctypes.addressof(a) for a in arrays], *api[1:], ctypes.addressof(lane_stats), ctypes.addressof(error))
        stages["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        ran = True
        rc = lib.stasis_lanes_run(ctypes.byref(job))
        stages["pipeline"] = time.perf_counter() - t
        lanes = range(len(copiers))
        stages["read_max"] = max(lane_stats[LANE_STATS * i] for i in lanes) / 1e9
        stages["slot_wait_max"] = max(lane_stats[LANE_STATS * i + 1] for i in lanes) / 1e9
        for name, k in _TIMELINE:  # when the last lane got there, from the pipeline's start
            stages[name] = max(lane_stats[LANE_STATS * i + k] for i in lanes) / 1e9
        if rc:
            raise _failure(error[0], error[1], error[2])
        nwin, ok = job.nwin, True
    finally:
        t = time.perf_counter()
        left = [(c, base + i * lane_bytes) for i, c in enumerate(copiers) if ran and lane_stats[LANE_STATS * i + 3]]
        # Invariant: every lane's DMA is drained before its slots are unpinned and unmapped, and no slot outlives
        # the load (the process is checkpointed later: pinned buffers would bloat the image).
        cleanup([*[c.synchronize for c in copiers], *[lambda c=c, a=a: c.unpin(a) for c, a in left],
                 lambda: _libc.unmap(mapping, span)], raise_errors=ok)
        stages["free"] = time.perf_counter() - t
    return nwin


def _failure(what: int, code: int, offset: int) -> StasisEngineError:
    where = f" (window at file offset {offset})" if offset >= 0 else ""
    if what == 1:
        return StasisEngineError("weights_io", f"pread failed: {os.strerror(code)}{where}")
    if what == 2:
        return StasisEngineError("weights_truncated", f"end of file at offset {code}{where}",
                                 hint="the file shrank during the load; the targets are partially written, load again")
    if what == 7:
        return StasisEngineError("weights_io", f"starting a lane thread failed: {os.strerror(code)}",
                                 hint="too many threads for this process? pass fewer (threads=...)")
    if what == _ERR_PLAN:
        return StasisEngineError("bad_argument", f"planning the lanes' windows failed: {os.strerror(code)}")
    return StasisEngineError("cuda_error", f"{_ERRORS.get(what, 'lane')} failed: CUDA error {code}{where}",
                             details={"cuda_error": code})
