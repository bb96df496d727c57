#!/usr/bin/env python3
"""Greedy generate with vLLM's CPU build, all in this one process, and say which of its kernel builds ran.

Usage: generate.py MODEL_DIR [PROMPT]   (prints one JSON line: token ids, text, kernels, torch's CPU capability)

Everything stays in this process (no engine core or worker process), so that under qemu-user, which emulates
only the process it starts, the whole generate runs on the emulated CPU:

    qemu-x86_64 -cpu EPYC $VENV/bin/python generate.py MODEL_DIR   # an AVX2 CPU without AVX-512
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    model = sys.argv[1]
    prompt = sys.argv[2] if len(sys.argv) > 2 else "The quick brown fox"
    os.environ.update(
        VLLM_ENABLE_V1_MULTIPROCESSING="0",  # the engine core in this process
        VLLM_NO_USAGE_STATS="1",
        HF_HUB_OFFLINE="1",
        VLLM_CPU_OMP_THREADS_BIND="nobind",
    )
    import torch
    from vllm import LLM, SamplingParams

    llm = LLM(model=model, dtype="float32", max_model_len=512, kv_cache_memory_bytes=64 << 20, enforce_eager=True)
    out = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=8), use_tqdm=False)[0].outputs[0]
    with open("/proc/self/maps") as f:
        kernels = sorted({line.split("/")[-1].strip() for line in f if "/vllm/_C" in line})
    print(json.dumps({
        "token_ids": list(out.token_ids),
        "text": out.text,
        "kernels": kernels,
        "capability": torch.backends.cpu.get_cpu_capability(),
    }))


if __name__ == "__main__":
    main()
