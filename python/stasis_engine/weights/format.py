"""The on-disk weights format (docs/weights-format.md): a fixed prefix, a JSON header, aligned extents.

Layout::

    0    prefix (72 bytes): magic "STASISWT", u32 version, u32 flags, u64 header_len, u64 data_offset,
         u64 file_size, sha256(header JSON) (32 bytes); little-endian
    72   header JSON (utf-8, header_len bytes), zero padding up to data_offset
    data_offset ...  extents at the offsets the header gives, each run aligned; file_size is a multiple of 4096

``read_header`` is the boundary: it checks everything a loader relies on, so the loader trusts the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ..errors import StasisEngineError

MAGIC = b"STASISWT"
VERSION = 1
FORMAT_NAME = "stasis-weights"
CHECKSUM_ALGO = "sha256"
PREFIX = struct.Struct("<8sIIQQQ32s")
IO_ALIGN = 4096  # the least alignment of every run, the data region and the file length (O_DIRECT)
KINDS = ("tensors", "extents")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_HEADER = 256 << 20


@dataclass(frozen=True)
class ExtentRecord:
    """One extent as the header describes it. ``key`` is the name (tensors) or the address (extents)."""

    index: int
    offset: int
    size: int
    checksum: str
    name: str | None = None
    address: int | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None

    @property
    def key(self) -> str | int:
        return self.name if self.name is not None else self.address  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """How messages name this extent."""
        return repr(self.name) if self.name is not None else f"{self.address:#x}+{self.size}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.address is not None:
            out["address"] = f"{self.address:#x}"
        out["offset"] = self.offset
        out["size"] = self.size
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.shape is not None:
            out["shape"] = list(self.shape)
        out["checksum"] = self.checksum
        return out


@dataclass(frozen=True)
class Header:
    kind: str
    alignment: int
    data_offset: int
    file_size: int
    extents: tuple[ExtentRecord, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    @property
    def payload_bytes(self) -> int:
        return sum(e.size for e in self.extents)


def encode_body(header: Header) -> bytes:
    """The header JSON alone (its length decides ``data_offset``)."""
    return json.dumps(
        {
            "format": FORMAT_NAME,
            "version": header.version,
            "kind": header.kind,
            "alignment": header.alignment,
            "checksum": CHECKSUM_ALGO,
            "meta": header.meta,
            "extents": [e.to_json() for e in header.extents],
        },
        separators=(",", ":"),
    ).encode()


def encode_header(header: Header) -> bytes:
    """The prefix, the JSON and the zero padding up to ``data_offset``; raises if the JSON does not fit."""
    body = encode_body(header)
    room = header.data_offset - PREFIX.size
    if len(body) > room:
        raise StasisEngineError("bad_argument", f"header JSON is {len(body)} bytes, room for {room}")
    prefix = PREFIX.pack(
        MAGIC, header.version, 0, len(body), header.data_offset, header.file_size, hashlib.sha256(body).digest()
    )
    return prefix + body + bytes(room - len(body))


def read_header(path: str | os.PathLike[str]) -> Header:
    """Open ``path``, check prefix, JSON, checksum of the header and file length; return the header."""
    try:
        with open(path, "rb") as f:
            actual_size = os.fstat(f.fileno()).st_size
            raw_prefix = f.read(PREFIX.size)
            if len(raw_prefix) < PREFIX.size:
                raise StasisEngineError(
                    "weights_truncated",
                    f"{path} is {actual_size} bytes, shorter than the {PREFIX.size}-byte prefix",
                    hint="the dump was cut short or this is not a weights file; dump the weights again",
                )
            magic, version, _flags, header_len, data_offset, file_size, digest = PREFIX.unpack(raw_prefix)
            if magic != MAGIC:
                raise _bad(path, f"not a stasis weights file (magic {magic!r})")
            if version != VERSION:
                raise _bad(path, f"format version {version}, this loader reads version {VERSION}")
            if actual_size < file_size:
                raise _truncated(path, actual_size, file_size)
            if actual_size > file_size:
                raise StasisEngineError(
                    "weights_length",
                    f"{path} is {actual_size} bytes, its header says {file_size}",
                    hint="the file was appended to or overwritten; dump the weights again",
                )
            if header_len > _MAX_HEADER or PREFIX.size + header_len > data_offset or data_offset > file_size:
                raise _bad(path, f"header length {header_len} / data offset {data_offset} out of range")
            body = f.read(header_len)
    except FileNotFoundError:
        raise StasisEngineError(
            "weights_missing", f"no weights file at {path}", hint="dump the weights first, or check the path"
        ) from None
    except IsADirectoryError:
        raise StasisEngineError("weights_missing", f"{path} is a directory, not a weights file") from None
    if hashlib.sha256(body).digest() != digest:
        raise _bad(path, "header checksum mismatch (the header bytes are corrupt)")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"header is not valid JSON ({e})") from None
    return _parse(path, doc, data_offset, file_size)


def _parse(path: Any, doc: Any, data_offset: int, file_size: int) -> Header:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME or doc.get("version") != VERSION:
        raise _bad(path, f"header JSON is not {FORMAT_NAME} version {VERSION}")
    kind, alignment, algo = doc.get("kind"), doc.get("alignment"), doc.get("checksum")
    if kind not in KINDS:
        raise _bad(path, f"kind {kind!r}, expected one of {KINDS}")
    if not _int(alignment) or alignment < IO_ALIGN or alignment & (alignment - 1):
        raise _bad(path, f"alignment {alignment!r}, expected a power of two >= {IO_ALIGN}")
    if algo != CHECKSUM_ALGO:
        raise _bad(path, f"checksum {algo!r}, expected {CHECKSUM_ALGO!r}")
    if data_offset % alignment or file_size % IO_ALIGN:
        raise _bad(path, f"data offset {data_offset} / file size {file_size} not aligned")
    meta, items = doc.get("meta", {}), doc.get("extents")
    if not isinstance(meta, dict) or not isinstance(items, list):
        raise _bad(path, "header needs 'meta' (object) and 'extents' (list)")
    records = tuple(_record(path, i, item, kind, data_offset, file_size) for i, item in enumerate(items))
    keys = [r.key for r in records]
    if len(set(keys)) != len(keys):
        raise _bad(path, "two extents share a name or address")
    end = data_offset
    for r in records:
        if r.size and r.offset < end:
            raise _bad(path, f"extent {r.label} overlaps the one before it (offsets must ascend)")
        end = max(end, r.offset + r.size)
    return Header(kind, alignment, data_offset, file_size, records, meta)


def _record(path: Any, i: int, item: Any, kind: str, data_offset: int, file_size: int) -> ExtentRecord:
    if not isinstance(item, dict):
        raise _bad(path, f"extent #{i} is not an object")
    offset, size, checksum = item.get("offset"), item.get("size"), item.get("checksum")
    if not (_int(offset) and _int(size) and size >= 0 and data_offset <= offset and offset + size <= file_size):
        raise _bad(path, f"extent #{i}: offset {offset!r} / size {size!r} outside the data region")
    if not isinstance(checksum, str) or not _HEX64.match(checksum):
        raise _bad(path, f"extent #{i}: checksum {checksum!r} is not 64 hex digits")
    if kind == "tensors":
        name, dtype, shape = item.get("name"), item.get("dtype"), item.get("shape")
        if not isinstance(name, str) or not isinstance(dtype, str):
            raise _bad(path, f"extent #{i}: a tensor extent needs 'name' and 'dtype' strings")
        if not isinstance(shape, list) or not all(_int(d) and d >= 0 for d in shape):
            raise _bad(path, f"extent {name!r}: shape {shape!r} is not a list of sizes")
        return ExtentRecord(i, offset, size, checksum, name=name, dtype=dtype, shape=tuple(shape))
    address = item.get("address")
    try:
        value = int(address, 16) if isinstance(address, str) else -1
    except ValueError:
        value = -1
    if value <= 0:
        raise _bad(path, f"extent #{i}: address {address!r} is not a hex address")
    return ExtentRecord(i, offset, size, checksum, address=value)


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad(path: Any, what: str) -> StasisEngineError:
    return StasisEngineError(
        "weights_bad_header", f"{path}: {what}", hint="the file is corrupt or not a weights dump; dump again"
    )


def _truncated(path: Any, actual: int, expected: int) -> StasisEngineError:
    return StasisEngineError(
        "weights_truncated",
        f"{path} is {actual} bytes, its header says {expected}",
        hint="the dump was cut short (disk full, interrupted copy); dump the weights again",
    )
