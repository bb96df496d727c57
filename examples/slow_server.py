#!/usr/bin/env python3
"""Test server (a): an HTTP server with a slow start and in-memory state.

Start-up spends --startup-seconds building a table in memory (standing in for an engine loading weights and
compiling). The state that must survive a snapshot round trip:
  GET  /health          200 once ready
  GET  /answer?q=TEXT   a deterministic answer computed from the in-memory table (the canary); &delay_ms=N
                        answers N ms late (tests hold a restore in its canary phase with it)
  PUT  /kv/KEY          store a value in memory (body = value; POST works too)
  GET  /kv/KEY          read it back
  GET  /stats           {"requests": n, "pid": ..., "keys": n, "io_uring": whether it holds one (--io-uring)}
  GET  /timer           {"ticks": n}: expiries of the periodic timerfd of --timer-ms (0: none) read so far
  GET  /ballast         sha256 of --ballast-mb MiB of memory filled at start (0: none), to check that much
                        memory comes back intact from a snapshot
  GET  /ghost           what the server wrote into its unlinked file (--ghost-file: a file in /tmp it keeps open
                        after removing its name, which CRIU carries in the images as a "ghost" file)
Only the standard library is used.
"""
import argparse
import hashlib
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def build_table(seconds: float) -> list[bytes]:
    """Chains sha256 for `seconds`: slow on purpose, and the result depends on every step."""
    table, digest, deadline = [], b"stasis", time.monotonic() + seconds
    while time.monotonic() < deadline or len(table) < 1024:
        digest = hashlib.sha256(digest).digest()
        table.append(digest)
    return table[:1024]


def open_io_uring() -> int:
    """io_uring_setup(8 entries) through libc's syscall(): the ring's fd, or -1 where it fails (ENOSYS, EPERM)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True).syscall(425, 8, ctypes.create_string_buffer(120))


def start_timer(period_ms: int) -> dict:
    """A periodic timerfd (CLOCK_MONOTONIC) read by a thread, as a server's heartbeat; returns its tick count."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.timerfd_create(1, 0)
    sec, nsec = period_ms // 1000, (period_ms % 1000) * 1_000_000
    period = (ctypes.c_long * 4)(sec, nsec, sec, nsec)  # struct itimerspec: it_interval, then it_value
    if fd < 0 or libc.timerfd_settime(fd, 0, period, None) != 0:
        raise OSError(ctypes.get_errno(), "timerfd")
    count = {"ticks": 0}

    def read_ticks() -> None:
        while True:
            count["ticks"] += int.from_bytes(os.read(fd, 8), "little")

    threading.Thread(target=read_ticks, daemon=True).start()
    return count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--startup-seconds", type=float, default=5.0)
    ap.add_argument("--ballast-mb", type=int, default=0)
    ap.add_argument("--timer-ms", type=int, default=0, help="hold a periodic timerfd of this period, read by a thread")
    ap.add_argument("--io-uring", action="store_true",
                    help="open an io_uring instance at start and hold it, as libuv 1.50+ (uvloop 0.23) does at every "
                         "loop start, where the system lets it (CRIU cannot dump one)")
    ap.add_argument("--ghost-file", action="store_true",
                    help="keep an unlinked file in /tmp open (CRIU carries its contents as a ghost file)")
    args = ap.parse_args()
    ghost = None
    if args.ghost_file:
        import tempfile

        fd, name = tempfile.mkstemp(prefix="slow-server-", dir="/tmp")
        os.unlink(name)  # open, with no name left
        ghost = os.fdopen(fd, "w+b")
        ghost.write(f"ghost of {os.getpid()}".encode())
        ghost.flush()
    ring = open_io_uring() if args.io_uring else -1
    timer = start_timer(args.timer_ms) if args.timer_ms > 0 else {"ticks": 0}
    t0 = time.monotonic()
    print(f"slow_server: building state for {args.startup_seconds:.1f} s", flush=True)
    table = build_table(args.startup_seconds)
    # Random bytes: no page is a copy of another or zero; /ballast (a canary) checks them after a restore.
    ballast = bytearray(args.ballast_mb << 20)
    for off in range(0, len(ballast), 1 << 24):
        ballast[off : off + (1 << 24)] = os.urandom(min(1 << 24, len(ballast) - off))
    kv: dict[str, str] = {}
    stats = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status: int, body: object) -> None:
            data = (json.dumps(body, sort_keys=True) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            stats["requests"] += 1
            url = urlparse(self.path)
            if url.path == "/health":
                return self.reply(200, {"ok": True})
            if url.path == "/answer":
                q = parse_qs(url.query).get("q", [""])[0]
                time.sleep(float(parse_qs(url.query).get("delay_ms", ["0"])[0]) / 1000)
                h = hashlib.sha256(q.encode())
                for row in table[: 1 + len(q) * 7 % 1024]:
                    h.update(row)
                return self.reply(200, {"q": q, "answer": h.hexdigest()})
            if url.path.startswith("/kv/"):
                key = url.path[4:]
                return self.reply(200, {"key": key, "value": kv[key]}) if key in kv else self.reply(404, {"error": "no such key"})
            if url.path == "/timer":
                return self.reply(200, {"ticks": timer["ticks"]})
            if url.path == "/ballast":
                return self.reply(200, {"mb": args.ballast_mb, "sha256": hashlib.sha256(ballast).hexdigest()})
            if url.path == "/ghost":
                if ghost is None:
                    return self.reply(404, {"error": "started without --ghost-file"})
                ghost.seek(0)
                return self.reply(200, {"text": ghost.read().decode()})
            if url.path == "/stats":
                return self.reply(200, {"requests": stats["requests"], "pid": os.getpid(), "keys": len(kv),
                                        "io_uring": ring >= 0})
            return self.reply(404, {"error": "not found"})

        def do_PUT(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            value = self.rfile.read(length).decode()
            if not url.path.startswith("/kv/"):
                return self.reply(404, {"error": "not found"})
            kv[url.path[4:]] = value
            return self.reply(200, {"stored": url.path[4:]})

        do_POST = do_PUT  # noqa: N815

        def log_message(self, fmt: str, *a: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"slow_server: ready on {args.host}:{args.port} after {time.monotonic() - t0:.2f} s", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
