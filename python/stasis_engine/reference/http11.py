"""Just enough HTTP/1.1 for a loopback control API: one request per connection, then ``Connection: close``.

Closing after every response is deliberate: no client keep-alive connection lingers into a CRIU dump (an
established TCP connection to the outside blocks it), and no idle-connection bookkeeping is needed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD = 64 << 10
MAX_BODY = 64 << 20


class HttpError(Exception):
    """A request the server cannot parse; answered with ``status`` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request, or None if the client closed before sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from e
    except asyncio.LimitOverrunError as e:
        raise HttpError(431, f"request head larger than {MAX_HEAD} bytes") from e
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line {lines[0][:80]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    body = await _read_body(reader, headers)
    return Request(method.upper(), unquote(url.path), parse_qs(url.query, keep_blank_values=True), headers, body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as e:
                raise HttpError(400, "malformed chunk size") from e
            if size == 0:
                await reader.readuntil(b"\r\n")  # trailers are not supported; expect the empty line
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:
        return b""
    if not length.isdigit():
        raise HttpError(400, f"bad Content-Length {length!r}")
    if int(length) > MAX_BODY:
        raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
    try:
        return await reader.readexactly(int(length))
    except asyncio.IncompleteReadError as e:
        raise HttpError(400, "request body shorter than Content-Length") from e


def response(status: int, body: bytes = b"", content_type: str = "application/json") -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    if body:
        head.append(f"Content-Type: {content_type}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def json_response(status: int, obj: Any) -> bytes:
    return response(status, json.dumps(obj, separators=(",", ":")).encode())
