#!/usr/bin/env python3
"""Test server (b): two processes shaped like vLLM's API server and EngineCore.

The front end (this process) serves HTTP and forwards work to an engine process over a unix socket; the
engine holds the state. Like vLLM, it uses multiprocessing (a spawned child, a semaphore in /dev/shm that is
unlinked while open) and a TCP connection inside the tree (like torch.distributed's TCPStore), on loopback or, with
--store-host, on the address given (vLLM's store uses the host's own address unless VLLM_HOST_IP says otherwise).
  GET /health           200 once the engine answered
  GET /answer?q=TEXT    computed by the engine from its in-memory state (the canary)
  GET /pids             {"frontend": pid, "engine": pid}
Only the standard library is used.
"""
import argparse
import hashlib
import json
import multiprocessing as mp
import os
import socket
import struct
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def send_msg(sock: socket.socket, obj: object) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack("!I", len(data)) + data)


def recv_msg(sock: socket.socket) -> object:
    head = recv_exact(sock, 4)
    return json.loads(recv_exact(sock, struct.unpack("!I", head)[0]))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def engine_main(
    sock_path: str, store_host: str, tcp_port: int, lock: "mp.synchronize.Lock", startup_seconds: float
) -> None:
    # State built slowly, as an engine loads weights.
    state, digest, deadline = [], b"engine", time.monotonic() + startup_seconds
    while time.monotonic() < deadline or len(state) < 512:
        digest = hashlib.sha256(digest).digest()
        state.append(digest)
    # A TCP connection to the front end that stays open (like a TCPStore client).
    store = socket.create_connection((store_host, tcp_port))
    store.sendall(b"hello")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_conn, args=(conn, state, lock), daemon=True).start()


def serve_conn(conn: socket.socket, state: list[bytes], lock: "mp.synchronize.Lock") -> None:
    with conn:
        while True:
            try:
                req = recv_msg(conn)
            except ConnectionError:
                return
            with lock:  # the multiprocessing semaphore must still work after a restore
                q = req["q"]
                h = hashlib.sha256(q.encode())
                for row in state[: 1 + len(q) * 13 % 512]:
                    h.update(row)
                send_msg(conn, {"answer": h.hexdigest(), "engine_pid": os.getpid()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--startup-seconds", type=float, default=2.0)
    ap.add_argument("--store-host", default="127.0.0.1", help="the address of the connection between the processes")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    lock = ctx.Lock()
    run_dir = tempfile.mkdtemp(prefix="stasis-two-proc-")
    sock_path = os.path.join(run_dir, "engine.sock")
    store = socket.socket()
    store.bind((args.store_host, 0))
    store.listen(1)
    engine_args = (sock_path, args.store_host, store.getsockname()[1], lock, args.startup_seconds)
    engine = ctx.Process(target=engine_main, args=engine_args, daemon=True)
    engine.start()
    store_conn, _ = store.accept()
    assert store_conn.recv(5) == b"hello"
    while not os.path.exists(sock_path):
        time.sleep(0.02)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    conn_lock = threading.Lock()

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
            url = urlparse(self.path)
            if url.path == "/health":
                return self.reply(200 if engine.is_alive() else 503, {"ok": engine.is_alive()})
            if url.path == "/pids":
                return self.reply(200, {"frontend": os.getpid(), "engine": engine.pid})
            if url.path == "/answer":
                q = parse_qs(url.query).get("q", [""])[0]
                with conn_lock:
                    send_msg(conn, {"q": q})
                    res = recv_msg(conn)
                return self.reply(200, {"q": q, "answer": res["answer"]})
            return self.reply(404, {"error": "not found"})

        def log_message(self, fmt: str, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"two_process_server: ready on 127.0.0.1:{args.port} (engine pid {engine.pid})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
