"""The load methods. Each takes planned copies/windows, an open fd, a Copier and a thread pool.

- ``run_reads`` ("cpu"): parallel preads straight into host targets.
- ``run_ring`` ("pinned-ring", "direct"): reader threads fill a ring of pinned slots, the main thread issues
  one async copy per piece and an event per slot; a slot is reused once its event has fired.
- ``run_lanes`` ("lanes"): every thread a lane of its own (a few small pinned slots, a stream, events): it takes
  the next window, reads it into its next slot and issues the slot's copies itself. No thread waits on another.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from . import _libc
from ._copier import Copier
from ._plan import Copy, Window

Stages = dict[str, float]


def run_reads(fd: int, copies: list[Copy], pool: ThreadPoolExecutor, piece: int, stages: Stages) -> None:
    t = time.perf_counter()
    futures = [
        pool.submit(_libc.read_exact, fd, c.address + o, min(piece, c.size - o), c.offset + o)
        for c in copies
        for o in range(0, c.size, piece)
    ]
    try:
        for f in futures:
            f.result()
    finally:
        _cancel_and_wait(futures)
    stages["pipeline"] = time.perf_counter() - t


def run_ring(
    fd: int,
    wins: list[Window],
    copier: Copier,
    pool: ThreadPoolExecutor,
    *,
    slots: int,
    slot_bytes: int,
    read_bytes: int,
    stages: Stages,
    gate: Callable[[], None] = lambda: None,
) -> None:
    """``gate``: called once the ring is allocated and pinned, before the first read."""
    n = len(wins)
    if not n:
        gate()
        return
    slots = max(2, min(slots, n + 1))
    t = time.perf_counter()
    # One mapping per slot, zeroed and pinned on the pool in parallel: pinning is on the hot path.
    allocs = [pool.submit(copier.alloc_staging, slot_bytes) for _ in range(slots)]
    pending: dict[int, list[Future[int]]] = {}
    read_wait = slot_wait = 0.0

    def submit(w: int) -> None:
        win, base = wins[w], ring[w % slots]
        pending[w] = [
            pool.submit(_libc.read_exact, fd, base + o, min(read_bytes, win.length - o), win.start + o)
            for o in range(0, win.length, read_bytes)
        ]

    def free_ring() -> None:
        wait(allocs)
        done = [f.result() for f in allocs if not f.cancelled() and f.exception() is None]
        for _ in pool.map(lambda address: copier.free_staging(address, slot_bytes), done):
            pass

    ok = False
    t0 = time.perf_counter()
    try:
        ring = [f.result() for f in allocs]
        stages["alloc"] = time.perf_counter() - t
        t = time.perf_counter()
        gate()
        t0 += time.perf_counter() - t  # the pipeline's time is the load's own, not the gate's wait
        for w in range(min(slots - 1, n)):
            submit(w)
        for w in range(n):
            t = time.perf_counter()
            for f in pending[w]:
                f.result()
            del pending[w]  # only once all its reads are done: cleanup must still see unfinished ones
            read_wait += time.perf_counter() - t
            src = ring[w % slots]
            for off, dst, size in wins[w].pieces:
                copier.copy(dst, src + off, size)
            copier.record(w % slots)
            nxt = w + slots - 1  # goes into the slot of window w-1, whose copies were issued one step ago
            if nxt < n:
                if w >= 1:
                    t = time.perf_counter()
                    copier.wait((w - 1) % slots)
                    slot_wait += time.perf_counter() - t
                submit(nxt)
        t = time.perf_counter()
        copier.synchronize()
        stages["drain"] = time.perf_counter() - t
        ok = True
    finally:
        stages["pipeline"] = time.perf_counter() - t0
        stages["read_wait"], stages["slot_wait"] = read_wait, slot_wait
        t = time.perf_counter()
        # Invariant: no reader thread and no DMA still touches a slot when it is unmapped (a late read would
        # write into freed memory), and the pinned ring never outlives the load: the process is checkpointed
        # later and leftover pinned buffers would bloat the checkpoint image.
        cleanup(
            [lambda: _cancel_and_wait([f for fs in pending.values() for f in fs]), copier.synchronize, free_ring],
            raise_errors=ok,
        )
        stages["free"] = time.perf_counter() - t


def run_lanes(
    fd: int,
    wins: list[Window],
    copiers: list[Copier],
    pool: ThreadPoolExecutor,
    *,
    slots: int,
    slot_bytes: int,
    stages: Stages,
) -> None:
    """One lane per copier, on the pool: each takes the next unread window (a shared counter), waits until its
    next slot's previous copies are done, reads the window into that slot and issues its copies on its own
    stream. The slots are small so that what the readers write may still be in the CPU's cache when the DMA
    reads it, and no Python thread orders the others' work, as the
    ring's main thread does. The first failure stops every lane after its current window; it is raised once all
    lanes have drained and freed their slots."""
    n = len(wins)
    if not n:
        return
    taken = itertools.count()  # next() on it is atomic under the GIL
    stop = threading.Event()
    failures: list[BaseException] = []
    waits: list[tuple[float, float]] = []

    def lane(copier: Copier) -> None:
        ring: list[int] = []
        read_s = slot_s = 0.0
        try:
            for _ in range(slots):
                ring.append(copier.alloc_staging(slot_bytes))
            k = 0
            while not stop.is_set():
                w = next(taken)
                if w >= n:
                    break
                slot = k % slots
                if k >= slots:
                    t = time.perf_counter()
                    copier.wait(slot)
                    slot_s += time.perf_counter() - t
                win, base = wins[w], ring[slot]
                t = time.perf_counter()
                _libc.read_exact(fd, base, win.length, win.start)
                read_s += time.perf_counter() - t
                for off, dst, size in win.pieces:
                    copier.copy(dst, base + off, size)
                copier.record(slot)
                k += 1
        except BaseException as e:  # noqa: BLE001 - raised by the caller once every lane is done
            failures.append(e)
            stop.set()
        finally:
            waits.append((read_s, slot_s))
            # Invariant: the lane's DMA is drained before its slots are unmapped, and no slot outlives the load.
            cleanup(
                [copier.synchronize, *[lambda a=a: copier.free_staging(a, slot_bytes) for a in ring]],
                raise_errors=False,
            )

    t = time.perf_counter()
    try:
        wait([pool.submit(lane, c) for c in copiers])
    finally:
        stages["pipeline"] = time.perf_counter() - t
        stages["read_max"] = max((r for r, _ in waits), default=0.0)
        stages["slot_wait_max"] = max((s for _, s in waits), default=0.0)
    if failures:
        raise failures[0]


def _cancel_and_wait(futures: list[Future[Any]]) -> None:
    for f in futures:
        f.cancel()
    wait(futures)


def cleanup(steps: list[Callable[[], object]], *, raise_errors: bool) -> None:
    """Run every step even if one fails; re-raise the first failure only when nothing else is propagating."""
    first: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as e:  # noqa: BLE001 - cleanup must run on
            first = first or e
    if first is not None and raise_errors:
        raise first
