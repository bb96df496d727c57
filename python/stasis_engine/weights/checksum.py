"""Per-extent SHA-256: computed at dump, checked only on demand (``verify``), never on the load's hot path.

SHA-256 because it is SHA-NI accelerated (within 1.5x of zlib.crc32: docs/weights-format.md), strong enough that a
match means "same bytes", and computable by any tool (Node's crypto, sha256sum). Extents hash in parallel, so
verifying takes about max(largest extent / R, total / (threads x R)) for a core's hash rate R.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..errors import StasisEngineError
from .format import ExtentRecord, read_header
from .stats import VerifyStats

_CHUNK = 16 << 20


def default_threads() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def verify(
    path: str | os.PathLike[str], *, threads: int | None = None, names: Iterable[str | int] | None = None
) -> VerifyStats:
    """Check the checksum of every extent (or of the extents whose name/address is in ``names``).

    Raises StasisEngineError("weights_checksum") naming the first bad extent. Example::

        verify("/snap/weights.stasisw")   # VerifyStats(bytes=6425..., seconds=0.6, ...)
    """
    header = read_header(path)
    wanted = None if names is None else set(names)
    records = [r for r in header.extents if wanted is None or r.key in wanted]
    return verify_records(path, records, threads=threads)


def verify_records(
    path: str | os.PathLike[str], records: list[ExtentRecord], *, threads: int | None = None
) -> VerifyStats:
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        order = sorted(records, key=lambda r: -r.size)  # longest first: the pool finishes together
        with ThreadPoolExecutor(max_workers=threads or default_threads(), thread_name_prefix="stasis-verify") as pool:
            digests = dict(
                zip((r.index for r in order), pool.map(lambda r: _hash_range(fd, r.offset, r.size), order), strict=True)
            )
    finally:
        os.close(fd)
    bad = [r for r in records if digests[r.index] != r.checksum]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise StasisEngineError(
            "weights_checksum",
            f"{path}: extent {bad[0].label} does not match its checksum{more}",
            hint="the file is corrupt; dump the weights again",
            details={"bad": [r.label for r in bad[:20]], "count": len(bad)},
        )
    return VerifyStats(str(path), sum(r.size for r in records), len(records), time.perf_counter() - start)


def _hash_range(fd: int, offset: int, size: int) -> str:
    h = hashlib.sha256()
    buf = bytearray(min(_CHUNK, max(size, 1)))
    view = memoryview(buf)
    done = 0
    while done < size:
        n = os.preadv(fd, [view[: min(len(buf), size - done)]], offset + done)
        if n <= 0:
            raise StasisEngineError("weights_truncated", f"end of file at offset {offset + done} while verifying")
        h.update(view[:n])
        done += n
    return h.hexdigest()
