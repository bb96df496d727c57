"""How the stager hands GPU memory to the engine over a Unix socket: file descriptors of ``cuMemCreate``
allocations (``SCM_RIGHTS``), one per allocation, framed so any number of them can go over.

The first message is one JSON line, ``{"size": TOTAL, "pieces": [SIZE, ...]}``, carrying the first descriptors;
further messages carry the rest, at most ``BATCH`` each (the kernel takes at most 253 descriptors per message), with
one byte ``+`` of data each. The engine answers ``ok`` or why it refused. An engine that takes one allocation (the
reference engine's arena) reads ``size`` and the first descriptor and needs nothing else.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

from ..errors import StasisEngineError

BATCH = 250


def send_memory(conn: socket.socket, fds: list[int], pieces: list[int]) -> None:
    """Sends ``fds`` (one per allocation, of ``pieces`` bytes each) on ``conn``."""
    if len(fds) != len(pieces) or not fds:
        raise StasisEngineError("stage_protocol", f"{len(fds)} descriptors for {len(pieces)} allocations")
    header = json.dumps({"size": sum(pieces), "pieces": pieces}).encode() + b"\n"
    socket.send_fds(conn, [header], fds[:BATCH])
    for i in range(BATCH, len(fds), BATCH):
        socket.send_fds(conn, [b"+"], fds[i : i + BATCH])


def recv_memory(conn: socket.socket) -> tuple[list[int], list[int]]:
    """The allocations' sizes and their descriptors (the caller closes them), as ``send_memory`` sent them.
    Closes whatever it received before raising."""
    data = b""
    fds: list[int] = []
    try:
        while b"\n" not in data or len(fds) < len(_pieces(data)):
            msg, got, _, _ = socket.recv_fds(conn, 1 << 16, BATCH + 3)
            fds += got
            if not msg and not got:
                raise StasisEngineError("stage_protocol", f"the stager hung up after {len(fds)} descriptors")
            data += msg
        pieces = _pieces(data)
        if len(fds) != len(pieces):
            raise StasisEngineError("stage_protocol", f"{len(fds)} descriptors for {len(pieces)} allocations")
        return pieces, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _pieces(data: bytes) -> list[int]:
    """The allocations' sizes from the header line (``[size]`` from a sender that gives none); [] until it came."""
    if b"\n" not in data:
        return []
    line = data.split(b"\n", 1)[0]
    try:
        head = json.loads(line)
        pieces = head.get("pieces", [head["size"]])
        if not pieces or not all(isinstance(p, int) and p > 0 for p in pieces) or sum(pieces) != head["size"]:
            raise ValueError(f"pieces {pieces!r} do not add up to size {head.get('size')!r}")
        return pieces
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise StasisEngineError("stage_protocol", f"bad hand-off message from the stager: {line[:200]!r} ({e})") from e


def connect_stager(path: str, timeout: float = 30) -> socket.socket:
    """A connection to the stager listening at ``path`` (the engine's side of the hand-off)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
    except OSError as err:
        conn.close()
        raise StasisEngineError(
            "stage_unreachable",
            f"cannot take the staged weights from {path}: {err}",
            "the stager exited; wake and refill instead",
        ) from err
    return conn


def take_memory(path: str, take: Callable[[list[int], list[int]], dict[str, Any]]) -> dict[str, Any]:
    """The engine's side of a hand-off: connects to the stager at ``path``, receives the allocations and has
    ``take(pieces, fds)`` map them (the descriptors are closed afterwards either way), then acknowledges, or tells
    the stager why not and raises that error. Returns what ``take`` returned."""
    with connect_stager(path) as conn:
        try:
            pieces, fds = recv_memory(conn)
            try:
                out = take(pieces, fds)
            finally:
                for fd in fds:
                    os.close(fd)
        except StasisEngineError as err:
            conn.sendall(f"{err.code}: {err.message}".encode())
            raise
        conn.sendall(b"ok")
    return out
