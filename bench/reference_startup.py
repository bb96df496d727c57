#!/usr/bin/env python3
"""Reference engine on the GPU machine: cold start-up profile, deterministic answers, sleep 1/2 + wake + refill.

    cd python && python3 ../bench/reference_startup.py --out $OUT/reference        # the H100 run (~3-4 min)
    python3 bench/reference_startup.py --config tiny --device cpu --out /tmp/rs     # smoke run, no GPU

Makes the model if missing (--model-dir, default /var/tmp/stasis-reference-<config>), starts the server from
scratch and records its start-up profile. Cold by default: the model files are evicted from the page cache
(fsync + fadvise DONTNEED) and the server compiles into fresh, empty inductor/triton cache directories
(--warm keeps both); the files' page-cache residency at start is measured (mincore) and recorded. Then
checks that greedy answers are identical across: a repeat; sleep 1 -> wake;
sleep 2 -> wake weights -> stasis_load_weights (from a stasis_dump_weights dump) -> wake kv_cache ->
reset_prefix_cache; sleep 2 -> wake -> reload_weights (the slow path). Prints a table; writes results.json
and server.log to --out. The weights dump (6.4 GB for 3b) goes to --work-dir, not into the results.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from stasis_engine.reference.client import Client, ServerProcess

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Snapshots restore servers in", "1, 2, 3, 4,"]
MAX_TOKENS = 32


def resident_fraction(paths: list[Path]) -> float | None:
    """Share of the files' pages in the page cache (mincore): how cold "cold" was."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    page = os.sysconf("SC_PAGE_SIZE")
    total = resident = 0
    for p in paths:
        size = p.stat().st_size
        fd = os.open(p, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED: maps, reads nothing
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                pages = (size + page - 1) // page
                vec = (ctypes.c_ubyte * pages)()
                if libc.mincore(addr, size, vec) != 0:
                    return None
                resident += sum(b & 1 for b in bytes(vec))
                total += pages
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    return resident / total if total else None


def evict(path: Path) -> None:
    """Drop one file from the page cache (no root needed): flush its dirty pages, then fadvise DONTNEED."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def answers(api: Client) -> dict[str, Any]:
    """The canary: each prompt alone, all four as one batch, and token logprobs of the first."""
    single = [api.complete(p, max_tokens=MAX_TOKENS)["choices"][0]["token_ids"] for p in PROMPTS]
    batch = [c["token_ids"] for c in api.complete(PROMPTS, max_tokens=MAX_TOKENS)["choices"]]
    lp = api.complete(PROMPTS[0], max_tokens=8, logprobs=1)["choices"][0]["logprobs"]["token_logprobs"]
    return {"single": single, "batch": batch, "logprobs": lp}


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t, 3)


def decode_rate(api: Client, n: int) -> dict[str, Any]:
    """Tokens per second of one long greedy completion (a sanity check that graphs replay, not a benchmark)."""
    api.complete(PROMPTS[0], max_tokens=4)
    out, s = timed(api.complete, PROMPTS[0], max_tokens=n, ignore_eos=True)
    got = out["usage"]["completion_tokens"]
    return {"tokens": got, "seconds": s, "tokens_per_s": round(got / s, 1), "ms_per_token": round(1000 * s / got, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="results directory (results.json, server.log)")
    ap.add_argument("--config", default="3b", choices=("3b", "tiny"))
    ap.add_argument("--model-dir", default=None, help="default /var/tmp/stasis-reference-<config>")
    ap.add_argument("--work-dir", default=None,
                    help="where the weights dump goes (default: /var/tmp/stasis-reference-work)")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--server-arg", action="append", default=[], help="extra serve argument (repeatable)")
    ap.add_argument("--ready-timeout", type=float, default=600)
    ap.add_argument("--warm", action="store_true", help="keep the model files cached and use the default compile "
                    "caches (default: evict the files with fadvise, compile into fresh empty cache dirs)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = Path(a.model_dir or f"/var/tmp/stasis-reference-{a.config}")
    work = Path(a.work_dir or "/var/tmp/stasis-reference-work")
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {
        "bench": "reference_startup", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(), "python": platform.python_version(), "config": a.config,
        "model_dir": str(model_dir), "checks": {},
    }
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "python")}

    t = time.perf_counter()
    made = subprocess.run([sys.executable, "-m", "stasis_engine.reference", "make-model", "--config", a.config,
                           "--out", str(model_dir)], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        print(made.stdout, made.stderr, file=sys.stderr)
        return 1
    res["make_model"] = {**json.loads(made.stdout.strip().splitlines()[-1].split(" ", 1)[1]),
                         "wall_s": round(time.perf_counter() - t, 2)}
    files = sorted(model_dir.glob("*.safetensors"))
    res["model_bytes"] = sum(f.stat().st_size for f in files)
    server_env: dict[str, str] = {}
    caches: Path | None = None
    if not a.warm:
        for f in files:
            evict(f)
        caches = work / f"compile-cache-{os.getpid()}"
        server_env = {"TORCHINDUCTOR_CACHE_DIR": str(caches / "inductor"), "TRITON_CACHE_DIR": str(caches / "triton")}
    res["cold"] = {"model_files_evicted": not a.warm, "fresh_compile_caches": not a.warm,
                   "page_cache_resident_at_start": resident_fraction(files)}

    server = ServerProcess.start(str(model_dir), log_path=str(out / "server.log"), device=a.device,
                                 args=a.server_arg, env=server_env)
    ok = False
    try:
        res["time_to_ready_s"] = round(server.wait_ready(a.ready_timeout), 2)
        api = server.client
        res["startup"] = api.ok("GET", "/stasis/startup")
        for key in ("compile", "cuda_graphs"):  # a silent eager fallback would make the profile a lie
            if res["startup"].get(key, {}).get("enabled"):
                res["checks"][f"{key}_ok"] = bool(res["startup"][key].get("ok"))
        base = answers(api)
        res["canary"] = base
        res["checks"]["repeat_identical"] = answers(api) == base
        # Not a check: a batch of 4 runs other kernels than batch 1, so bf16 rounding may legitimately differ.
        res["batch_equals_single"] = base["batch"] == base["single"]
        res["decode"] = decode_rate(api, 256)

        s1, res["sleep1_s"] = timed(api.sleep, 1)
        res["sleep1"] = s1
        res["is_sleeping_while_asleep"] = api.ok("GET", "/is_sleeping")["is_sleeping"]
        res["health_while_asleep"] = api.request("GET", "/health")[0]
        res["completion_while_asleep"] = api.request("POST", "/v1/completions", {"prompt": "x"})[0]
        res["wake1"], res["wake1_s"] = timed(api.wake)
        res["checks"]["sleep1_identical"] = answers(api) == base

        dump_path = str(work / f"{a.config}.stasisw")
        res["dump"], res["dump_s"] = timed(api.rpc, "stasis_dump_weights", dump_path)
        res["sleep2"], res["sleep2_s"] = timed(api.sleep, 2)
        res["wake_weights"], res["wake_weights_s"] = timed(api.wake, "weights")
        res["load"], res["load_s"] = timed(api.rpc, "stasis_load_weights", dump_path)
        res["wake_kv"], res["wake_kv_s"] = timed(api.wake, "kv_cache")
        _, res["reset_prefix_cache_s"] = timed(api.ok, "POST", "/reset_prefix_cache")
        res["checks"]["sleep2_fast_refill_identical"] = answers(api) == base

        api.sleep(2)
        api.wake()
        refused = api.request("POST", "/v1/completions", {"prompt": "x"})[1]
        res["refused_before_refill"] = refused["error"]["stasis_code"]
        res["reload"], res["reload_s"] = timed(api.rpc, "reload_weights")
        res["checks"]["sleep2_slow_reload_identical"] = answers(api) == base
        res["final_status"] = api.rpc("stasis_status")
        ok = all(res["checks"].values())
    finally:
        res["server_exit_code"] = server.stop()
        if caches is not None:
            shutil.rmtree(caches, ignore_errors=True)
        res["ok"] = ok and res["server_exit_code"] == 0
        (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
        print_table(res)
    return 0 if res["ok"] else 1


def _gb(n: Any) -> str:
    return f"{n / 1e9:.2f} GB" if isinstance(n, (int, float)) else "-"


def print_table(res: dict[str, Any]) -> None:
    made = res.get("make_model", {})
    rows: list[tuple[str, str]] = [
        ("model", f"{res['config']} ({_gb(res.get('model_bytes'))}), page cache at start "
                  f"{res.get('cold', {}).get('page_cache_resident_at_start')}, fresh compile caches "
                  f"{res.get('cold', {}).get('fresh_compile_caches')}"),
        ("make-model", f"{made.get('wall_s')} s (skipped={made.get('skipped')})"),
        ("time to ready (outside)", f"{res.get('time_to_ready_s')} s"),
    ]
    prof = res.get("startup", {})
    for p in prof.get("phases", []):
        extra = f"  {_gb(p['bytes'])}" if "bytes" in p else ""
        extra += f"  {p['gbps']} GB/s" if "gbps" in p else ""
        rows.append((f"  phase {p['phase']}", f"{p['ms'] / 1000:.2f} s{extra}"))
    rows.append(("  total (inside)", f"{prof.get('total_ms', 0) / 1000:.2f} s"))
    for key in ("compile", "cuda_graphs"):
        info = prof.get(key, {})
        if info.get("enabled"):
            rows.append((f"  {key}", "ok" if info.get("ok") else f"FAILED: {info.get('error')}"))
    if "decode" in res:
        rows.append(("decode (batch 1)", f"{res['decode']['ms_per_token']} ms/token"))
    for key in ("sleep1", "sleep2"):
        if key in res:
            m = res[key].get("memory", {})
            rows.append((f"{key}", f"{res[key + '_s']} s; asleep: GPU used {_gb(m.get('device_used_bytes'))}, torch "
                         f"allocated {_gb(m.get('torch_allocated_bytes'))}, host RSS {_gb(m.get('host_rss_bytes'))}, "
                         f"threads {m.get('threads')}, children {m.get('children')}"))
            for pool, seg in (m.get("torch_segments") or {}).items():
                rows.append((f"  {key} torch {pool} pool", f"{seg['segments']} segments, reserved "
                             f"{_gb(seg['reserved_bytes'])}, allocated {_gb(seg['allocated_bytes'])}, largest "
                             f"{_gb(seg['largest_bytes'])}"))
    for key in ("wake1", "dump", "wake_weights", "load", "wake_kv", "reload"):
        if key in res:
            r = res[key]
            rate = f", {r.get('gbps')} GB/s" if isinstance(r, dict) and "gbps" in r else ""
            how = f" via {r.get('method')}" if isinstance(r, dict) and r.get("method") else ""
            rows.append((key, f"{res[key + '_s']} s{rate}{how}"))
    for name, passed in res.get("checks", {}).items():
        rows.append((f"check {name}", "PASS" if passed else "FAIL"))
    rows.append(("batch of 4 == 4 singles (info)", str(res.get("batch_equals_single"))))
    rows.append(("server exit code", str(res.get("server_exit_code"))))
    rows.append(("RESULT", "OK" if res.get("ok") else "FAILED"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")


if __name__ == "__main__":
    sys.exit(main())
