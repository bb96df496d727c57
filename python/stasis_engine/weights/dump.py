"""``dump``: write tensors or raw GPU extents to a weights file, atomically."""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import __version__
from ..errors import StasisEngineError
from . import _libc
from ._copier import Copier, open_copier
from ._targets import Device, Target, check_overlaps, from_source
from .checksum import default_threads
from .format import IO_ALIGN, PREFIX, ExtentRecord, Header, encode_body, encode_header
from .stats import DumpStats

_STAGING = 16 << 20


def dump(
    source: Any,
    path: str | os.PathLike[str],
    *,
    device: Any = None,
    alignment: int = IO_ALIGN,
    threads: int | None = None,
    meta: dict[str, Any] | None = None,
) -> DumpStats:
    """Write ``source`` to ``path``: a temp file beside it, fsync, rename. A failed dump leaves ``path`` as it was.

    ``source`` is a mapping name -> torch.Tensor (CPU or CUDA, contiguous, one device) or a sequence of
    ``Extent`` (GPU memory of ``device``, default the current CUDA device; ``device="cpu"`` for host memory).
    Extents are laid out in address order, so a later load into the same memory reads the file front to back;
    neighbours adjacent in memory stay adjacent in the file, each run starts ``alignment``-aligned.

    Example::

        dump(dict(model.named_parameters()), "/snap/weights.stasisw")
        dump([Extent(0x7F3A00000000, 2 << 20)], "/snap/weights.stasisw")
    """
    start = time.perf_counter()
    if not isinstance(alignment, int) or alignment < IO_ALIGN or alignment & (alignment - 1):
        raise StasisEngineError("bad_argument", f"alignment={alignment!r}, expected a power of two >= {IO_ALIGN}")
    kind, targets, dev = from_source(source, device)
    check_overlaps(targets)
    ordered = sorted(targets, key=lambda t: (t.address, t.size))
    relative, data_len = _layout(ordered, alignment)
    info = {"created_unix": int(time.time()), "writer": f"stasis_engine {__version__}", "device": str(dev)}
    header = _sized_header(kind, ordered, relative, data_len, alignment, {**info, **(meta or {})})

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    renamed = False
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a snapshot is read by the restoring process
        os.ftruncate(fd, header.file_size)
        checksums = _write_extents(
            fd, dev, list(zip(ordered, header.extents, strict=True)), threads or default_threads()
        )
        final = Header(
            kind,
            alignment,
            header.data_offset,
            header.file_size,
            tuple(_with_checksum(r, checksums[r.index]) for r in header.extents),
            header.meta,
        )
        _write_bytes(fd, encode_header(final), 0)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
        renamed = True
        _fsync_dir(directory)
    finally:
        # Invariant: a failed dump leaves no partial file behind and never touches `path`.
        if fd >= 0:
            os.close(fd)
        if not renamed:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    payload = sum(t.size for t in targets)
    return DumpStats(path, payload, header.file_size, len(targets), time.perf_counter() - start)


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def _layout(ordered: list[Target], alignment: int) -> tuple[list[int], int]:
    """Offsets relative to the data region: neighbours adjacent in memory stay adjacent, runs aligned."""
    out: list[int] = []
    pos, prev = 0, None
    for t in ordered:
        if prev is None or prev.address + prev.size != t.address:
            pos = _align(pos, alignment)
        out.append(pos)
        pos += t.size
        prev = t
    return out, _align(pos, IO_ALIGN)


def _sized_header(
    kind: str, ordered: list[Target], relative: list[int], data_len: int, alignment: int, meta: dict[str, Any]
) -> Header:
    """A header with placeholder checksums whose ``data_offset`` leaves room for its own JSON."""
    data_offset = alignment
    while True:
        records = tuple(
            ExtentRecord(
                i,
                data_offset + off,
                t.size,
                "0" * 64,
                name=t.key if kind == "tensors" else None,  # type: ignore[arg-type]
                address=t.address if kind == "extents" else None,
                dtype=t.dtype,
                shape=t.shape,
            )
            for i, (t, off) in enumerate(zip(ordered, relative, strict=True))
        )
        header = Header(kind, alignment, data_offset, data_offset + data_len, records, meta)
        need = _align(PREFIX.size + len(encode_body(header)), alignment)
        if need <= data_offset:
            return header
        data_offset = need


def _with_checksum(r: ExtentRecord, checksum: str) -> ExtentRecord:
    return ExtentRecord(r.index, r.offset, r.size, checksum, r.name, r.address, r.dtype, r.shape)


def _write_extents(fd: int, dev: Device, work: list[tuple[Target, ExtentRecord]], threads: int) -> dict[int, str]:
    copier = open_copier(dev.kind, dev.index)
    staging: list[int] = []
    lock, local = threading.Lock(), threading.local()

    def buffer() -> int:
        if not hasattr(local, "address"):
            local.address = copier.alloc_staging(_STAGING)
            with lock:
                staging.append(local.address)
        return local.address

    def one(item: tuple[Target, ExtentRecord]) -> tuple[int, str]:
        t, r = item
        return r.index, _write_one(fd, copier, t, r.offset, dev.kind == "cpu", buffer)

    try:
        order = sorted(work, key=lambda w: -w[0].size)  # longest first: hashing ends together
        with ThreadPoolExecutor(threads, thread_name_prefix="stasis-dump", initializer=copier.thread_init) as pool:
            return dict(pool.map(one, order))
    finally:
        # Invariant: staging buffers are pinned host memory; none may outlive the dump (checkpoint size).
        for address in staging:
            copier.free_staging(address, _STAGING)
        copier.close()


def _write_one(fd: int, copier: Copier, t: Target, offset: int, host: bool, buffer: Any) -> str:
    h = hashlib.sha256()
    if host:
        if t.size:
            h.update(memoryview((ctypes.c_char * t.size).from_address(t.address)))
            _libc.write_exact(fd, t.address, t.size, offset)
        return h.hexdigest()
    pos = 0
    while pos < t.size:
        n = min(_STAGING, t.size - pos)
        buf = buffer()
        copier.copy_to_host(buf, t.address + pos, n)
        h.update(memoryview((ctypes.c_char * n).from_address(buf)))
        _libc.write_exact(fd, buf, n, offset + pos)
        pos += n
    return h.hexdigest()


def _write_bytes(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
