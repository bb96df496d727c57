"""libc through ctypes: pread/pwrite by address, mmap/munmap/madvise/mincore.

ctypes releases the GIL around every foreign call, so reads issued from a thread pool run in parallel,
and reading straight to an address needs no Python buffer object per read.
"""

from __future__ import annotations

import ctypes
import errno
import mmap as _mmap
import os
from functools import lru_cache

from ..errors import StasisEngineError

PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
MAP_SHARED = _mmap.MAP_SHARED
MAP_PRIVATE = _mmap.MAP_PRIVATE
MAP_ANONYMOUS = _mmap.MAP_ANONYMOUS
MADV_HUGEPAGE = getattr(_mmap, "MADV_HUGEPAGE", 14)
MADV_POPULATE_WRITE = 23  # Linux >= 5.14
PAGE = _mmap.PAGESIZE
_MAP_FAILED = ctypes.c_void_p(-1).value


@lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
    lib.pread.restype = ctypes.c_ssize_t
    lib.pwrite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
    lib.pwrite.restype = ctypes.c_ssize_t
    lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    lib.mmap.restype = ctypes.c_void_p
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.munmap.restype = ctypes.c_int
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.madvise.restype = ctypes.c_int
    lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    lib.mincore.restype = ctypes.c_int
    return lib


def _os_error(what: str) -> StasisEngineError:
    err = ctypes.get_errno()
    return StasisEngineError("weights_io", f"{what}: {os.strerror(err)} (errno {err})")


def read_exact(fd: int, address: int, size: int, offset: int) -> int:
    """Read ``size`` bytes at file ``offset`` into memory at ``address``; a short file is an error."""
    lib, done = libc(), 0
    while done < size:
        n = lib.pread(fd, address + done, size - done, offset + done)
        if n < 0:
            if ctypes.get_errno() == errno.EINTR:
                continue
            raise _os_error(f"pread of {size - done} bytes at offset {offset + done}")
        if n == 0:
            raise StasisEngineError(
                "weights_truncated",
                f"end of file at offset {offset + done} while reading {size} bytes at {offset}",
                hint="the file shrank during the load; the targets are partially written, load again",
            )
        done += n
    return size


def write_exact(fd: int, address: int, size: int, offset: int) -> int:
    """Write ``size`` bytes from memory at ``address`` to file ``offset``."""
    lib, done = libc(), 0
    while done < size:
        n = lib.pwrite(fd, address + done, size - done, offset + done)
        if n < 0:
            if ctypes.get_errno() == errno.EINTR:
                continue
            raise _os_error(f"pwrite of {size - done} bytes at offset {offset + done}")
        done += n
    return size


def map_file(fd: int, size: int) -> int:
    """A read-only shared mapping of the first ``size`` bytes of ``fd``; release it with ``unmap``."""
    addr = libc().mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        raise _os_error(f"mmap of {size} bytes")
    return int(addr)


def map_anonymous(size: int, *, huge: bool = True, populate: bool = False) -> int:
    """Private anonymous memory (page aligned); release it with ``unmap``."""
    lib = libc()
    addr = lib.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if addr is None or addr == _MAP_FAILED:
        raise _os_error(f"mmap of {size} anonymous bytes")
    if huge:
        lib.madvise(addr, size, MADV_HUGEPAGE)  # best effort: fewer faults and page-table entries to pin
    if populate:
        lib.madvise(addr, size, MADV_POPULATE_WRITE)  # best effort; first touch does it otherwise
    return int(addr)


def unmap(address: int, size: int) -> None:
    if libc().munmap(address, size) != 0:
        raise _os_error(f"munmap of {size} bytes at {address:#x}")


def resident_fraction(address: int, ranges: list[tuple[int, int]], samples: int = 64) -> float | None:
    """Sampled fraction of pages in the page cache over ``(offset, length)`` ranges of a mapping at ``address``.

    Samples ``samples`` windows of 16 pages spread over the ranges; cheap enough for the hot path (~0.1 ms).
    None when mincore is not available.
    """
    total = sum(n for _, n in ranges)
    if total <= 0:
        return 1.0
    lib, pages, resident, checked = libc(), 16, 0, 0
    vec = (ctypes.c_ubyte * pages)()
    step = max(total // samples, 1)
    for k in range(min(samples, total)):
        pos = k * step
        for off, n in ranges:
            if pos < n:
                start = (off + pos) // PAGE * PAGE
                end = min(off + n, start + pages * PAGE)
                count = max((end - start + PAGE - 1) // PAGE, 1)
                if lib.mincore(address + start, count * PAGE, vec) != 0:
                    return None
                resident += sum(vec[i] & 1 for i in range(count))
                checked += count
                break
            pos -= n
    return resident / checked if checked else 1.0
