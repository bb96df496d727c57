#!/usr/bin/env python3
"""Sleep level 1 and level 2 (+ refill) on a running reference engine (or vLLM), answers compared bit for bit.

    python3 bench/sleep_levels.py http://127.0.0.1:8300 [WEIGHTS_DUMP]

Greedy completions (text and logprobs) before, after sleep 1 -> wake, and, given the path of a weights dump
(`stasis_dump_weights`), after sleep 2 -> wake weights -> stasis_load_weights -> wake kv_cache. Prints one
JSON line per step with its time and whether the answers matched; exits 1 on a mismatch.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from stasis_engine.reference.client import Client  # noqa: E402

PROMPTS = ["The capital of France is", "def fibonacci(n):", "1, 2, 3, 4,"]


def answers(c: Client) -> list:
    out = []
    for p in PROMPTS:
        r = c.complete(p, max_tokens=16, logprobs=1)
        ch = r["choices"][0]
        out.append([ch["text"], ch.get("logprobs")])
    return out


def timed(what: str, fn):
    t = time.perf_counter()
    r = fn()
    ms = (time.perf_counter() - t) * 1000
    return r, ms


def main() -> int:
    c = Client(sys.argv[1])
    dump = sys.argv[2] if len(sys.argv) > 2 else None
    before = answers(c)
    ok = True
    _, s1 = timed("sleep1", lambda: c.sleep(1))
    _, w1 = timed("wake1", lambda: c.wake())
    same = answers(c) == before
    ok &= same
    print(json.dumps({"step": "sleep 1 -> wake", "sleep_ms": round(s1, 1), "wake_ms": round(w1, 1), "identical": same}))
    if dump:
        _, s2 = timed("sleep2", lambda: c.sleep(2))
        _, ww = timed("wake weights", lambda: c.wake("weights"))
        _, ld = timed("load", lambda: c.rpc("stasis_load_weights", dump))
        _, wk = timed("wake kv", lambda: c.wake("kv_cache"))
        same = answers(c) == before
        ok &= same
        print(json.dumps({"step": "sleep 2 -> wake weights -> stasis_load_weights -> wake kv_cache", "sleep_ms": round(s2, 1),
                          "wake_weights_ms": round(ww, 1), "load_ms": round(ld, 1), "wake_kv_ms": round(wk, 1), "identical": same}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
