"""Front end <-> engine messages: 4-byte big-endian length, then UTF-8 JSON. Blocking and asyncio flavours."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_LEN = struct.Struct(">I")
MAX_MESSAGE = 256 << 20


def encode(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _LEN.pack(len(body)) + body


def _decode_length(head: bytes) -> int:
    (n,) = _LEN.unpack(head)
    if n > MAX_MESSAGE:
        raise ValueError(f"peer announced a {n}-byte message (limit {MAX_MESSAGE})")
    return n


def send(sock: socket.socket, obj: Any) -> None:
    sock.sendall(encode(obj))


def recv(sock: socket.socket) -> Any | None:
    """The next message, or None when the peer closed the socket."""
    head = _recv_exact(sock, _LEN.size, at_boundary=True)
    if head is None:
        return None
    return json.loads(_recv_exact(sock, _decode_length(head), at_boundary=False) or b"")


def _recv_exact(sock: socket.socket, n: int, *, at_boundary: bool) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            if at_boundary and not buf:
                return None
            raise ConnectionError("peer closed the socket in the middle of a message")
        buf += chunk
    return bytes(buf)


async def asend(writer: asyncio.StreamWriter, obj: Any) -> None:
    writer.write(encode(obj))
    await writer.drain()


async def arecv(reader: asyncio.StreamReader) -> Any | None:
    try:
        head = await reader.readexactly(_LEN.size)
    except asyncio.IncompleteReadError:
        return None
    body = await reader.readexactly(_decode_length(head))
    return json.loads(body)
