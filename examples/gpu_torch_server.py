#!/usr/bin/env python3
"""GPU test server: holds GPU memory filled with deterministic random data and answers checksums of it.

  --gib N          GiB to hold on the GPU in the main process (default 4)
  --worker-gib N   also spawn a worker process holding N GiB on the GPU (two CUDA contexts in one tree)
  --device D       CUDA device index inside the process (default 0; CUDA_VISIBLE_DEVICES also applies)

  GET /health      200 once the memory is filled
  GET /checksum    {"main": ..., "worker": ...}: sums computed on the GPU right now (float64), bit-exact
  GET /info        pids, bytes held, device names and UUIDs
Uses torch and the standard library only (the GPU machine has no web framework).
"""
import argparse
import json
import multiprocessing as mp
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fill(gib: float, device: int, seed: int):
    import torch

    torch.cuda.set_device(device)
    g = torch.Generator(device=f"cuda:{device}").manual_seed(seed)
    n = int(gib * 2**30) // 4
    t = torch.empty(n, dtype=torch.float32, device=f"cuda:{device}")
    t.uniform_(generator=g)
    torch.cuda.synchronize()
    return t


def checksum(t) -> str:
    """A float64 sum over 64 Mi-element slices (no full-size temporary), plus a position-weighted sum of the
    first slice; cached temporaries are released so the process holds only its data when checkpointed."""
    import torch

    total = torch.zeros((), dtype=torch.float64, device=t.device)
    step = 1 << 26
    for i in range(0, t.numel(), step):
        total += t[i : i + step].to(torch.float64).sum()
    head = t[: 1 << 20].to(torch.float64)
    w = (head * torch.arange(head.numel(), device=t.device, dtype=torch.float64)).sum()
    out = f"{total.item():.17g}/{w.item():.17g}"
    del total, head, w
    torch.cuda.empty_cache()
    return out


def worker_main(conn, gib: float, device: int) -> None:
    t = fill(gib, device, seed=2)
    conn.send(("ready", os.getpid()))
    while True:
        msg = conn.recv()
        if msg == "checksum":
            conn.send(checksum(t))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8770)
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--worker-gib", type=float, default=0.0)
    ap.add_argument("--device", type=int, default=0)
    args = ap.parse_args()
    t0 = time.monotonic()
    import torch

    tensor = fill(args.gib, args.device, seed=1)
    worker = None
    if args.worker_gib > 0:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        worker = ctx.Process(target=worker_main, args=(child, args.worker_gib, args.device), daemon=True)
        worker.start()
        assert parent.recv()[0] == "ready"
    import threading

    lock = threading.Lock()
    props = torch.cuda.get_device_properties(args.device)

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
            if self.path == "/health":
                return self.reply(200, {"ok": True})
            if self.path == "/checksum":
                with lock:
                    out = {"main": checksum(tensor)}
                    if worker is not None:
                        parent.send("checksum")
                        out["worker"] = parent.recv()
                return self.reply(200, out)
            if self.path == "/info":
                return self.reply(200, {
                    "pid": os.getpid(),
                    "worker_pid": worker.pid if worker else None,
                    "bytes": tensor.numel() * 4,
                    "device": props.name,
                    "uuid": str(getattr(props, "uuid", "")),
                })
            return self.reply(404, {"error": "not found"})

        def log_message(self, fmt: str, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"gpu_torch_server: ready after {time.monotonic() - t0:.1f} s holding {args.gib} GiB (+{args.worker_gib} GiB in a worker)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
