#!/usr/bin/env python3
"""How fast this machine puts fresh memory under a process: the floor under CRIU's restore of an image's pages.

    python3 bench/memory_touch.py [--gib 8] [--rounds 3] [--threads 1,8] [--json OUT]

Each case maps GIB of anonymous memory, writes every byte (memset, the GIL released) and unmaps it, round after
round in one process. Round 1 touches memory this process never had; later rounds get pages the kernel just
took back. On a VM whose host backs guest memory lazily (Firecracker), memory the guest has never touched costs
a host page fault too, so round 1 can be slower than the rest: that difference is the VM's, not the workload's.
Also: the same with MAP_POPULATE (the kernel faults the range in one call), and with transparent huge pages
requested for the range (madvise MADV_HUGEPAGE; the system setting is only read, never changed).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import sys
import threading
import time
from pathlib import Path

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
MAP_POPULATE = 0x8000
MADV_HUGEPAGE = 14


def fill(size: int, threads: int, populate: bool, huge: bool) -> float:
    """Seconds to map ``size`` bytes and have every byte written (the unmap is not timed)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (MAP_POPULATE if populate else 0)
    t = time.perf_counter()
    addr = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        if huge:
            libc.madvise(addr, size, MADV_HUGEPAGE)
        chunk = (size + threads - 1) // threads
        parts = [(addr + i * chunk, min(chunk, size - i * chunk)) for i in range(threads)]
        workers = [threading.Thread(target=libc.memset, args=(a, 1, n)) for a, n in parts if n > 0]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - t
    finally:
        libc.munmap(addr, size)


def thp_setting() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,8")
    ap.add_argument("--json", default=None, help="write the results here too")
    a = ap.parse_args()
    size = int(a.gib * (1 << 30))
    cases = [(f"{t} thread{'s' if t > 1 else ''}", t, False, False) for t in map(int, a.threads.split(","))]
    cases += [("1 thread, MAP_POPULATE", 1, True, False), ("1 thread, MADV_HUGEPAGE", 1, False, True),
              ("8 threads, MADV_HUGEPAGE", 8, False, True)]
    rows = []
    for name, threads, populate, huge in cases:
        secs = [fill(size, threads, populate, huge) for _ in range(a.rounds)]
        rows.append({"case": name, "gib": a.gib, "seconds": [round(s, 3) for s in secs],
                     "gb_per_s": [round(size / s / 1e9, 2) for s in secs]})
    res = {"bench": "memory_touch", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "cores": os.cpu_count(), "thp": thp_setting(), "rows": rows}
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(f"fresh anonymous memory, {a.gib:g} GiB per round, THP setting: {res['thp']}")
    print("| case | " + " | ".join(f"round {i + 1} GB/s" for i in range(a.rounds)) + " |")
    print("| --- |" + " ---: |" * a.rounds)
    for r in rows:
        print(f"| {r['case']} | " + " | ".join(str(x) for x in r["gb_per_s"]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
