#!/usr/bin/env python3
"""What a torch process holds on the GPU besides its tensors: the memory a CUDA checkpoint copies.

Prints the device memory in use (nvidia-smi's memory.used, minus its reading before this process started
CUDA: run it on an otherwise idle GPU) after each step a server takes at start-up, torch's reserved bytes
beside it, and the CUDA limits that size the context's own reservations (stack size -> local memory, malloc
heap, printf FIFO). The 3B reference engine asleep holds ~0.9 GB, of which torch reserves 0.09 GB.

    python3 bench/gpu_context.py
"""

from __future__ import annotations

import ctypes
import subprocess

LIMITS = {"stack": 0, "printf_fifo": 1, "malloc_heap": 2}  # cudaLimit values


def used_mb() -> int:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[0])


def main() -> None:
    base = used_mb()
    rows: list[tuple[str, int, float]] = []
    import torch

    def mark(step: str) -> None:
        torch.cuda.synchronize()
        rows.append((step, used_mb() - base, torch.cuda.memory_reserved() / 2**20))

    torch.cuda.init()
    # torch's own libcudart (the one /proc/self/maps shows), so limits are read from this process's context.
    cudart = ctypes.CDLL(next(line.split()[-1] for line in open("/proc/self/maps") if "/libcudart.so" in line))

    def limits() -> str:
        out = []
        for name, code in LIMITS.items():
            v = ctypes.c_size_t()
            cudart.cudaDeviceGetLimit(ctypes.byref(v), code)
            out.append(f"{name}={v.value}")
        return " ".join(out)

    torch.zeros(1, device="cuda")
    mark("context + 1 tensor")
    print("limits after init:", limits())
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    mark("+ 32 MB tensor")
    (a @ a).sum().item()
    mark("+ bf16 matmul (cuBLAS)")
    torch.nn.functional.linear(a, a, a[0]).sum().item()
    mark("+ linear with bias (cuBLASLt)")
    q = torch.randn(8, 24, 128, 128, device="cuda", dtype=torch.bfloat16)
    torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).sum().item()
    mark("+ SDPA (flash)")
    torch.nn.functional.silu(a).mul(a).float().softmax(-1).sum().item()
    mark("+ elementwise/softmax kernels")
    print("limits after kernels:", limits())
    del a, q
    torch.cuda.empty_cache()
    mark("tensors freed, empty_cache")
    for name, value in (("stack", 1024), ("malloc_heap", 1 << 20), ("printf_fifo", 1 << 20), ("stack", 512), ("stack", 256), ("stack", 64)):
        rc = cudart.cudaDeviceSetLimit(LIMITS[name], ctypes.c_size_t(value))
        mark(f"set {name}={value} (rc {rc})")
    print("limits after lowering:", limits())
    # The same kernels again with the small stack: same answers (the driver grows the stack where a kernel needs it).
    torch.manual_seed(0)
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    q = torch.randn(8, 24, 128, 128, device="cuda", dtype=torch.bfloat16)
    out1 = [(a @ a).float().sum().item(), torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).float().sum().item(),
            torch.nn.functional.silu(a).mul(a).float().softmax(-1).sum().item()]
    mark("kernels again after lowering the stack")
    print("limits after the kernels:", limits())
    rc = cudart.cudaDeviceSetLimit(LIMITS["stack"], ctypes.c_size_t(1024))
    out2 = [(a @ a).float().sum().item(), torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).float().sum().item(),
            torch.nn.functional.silu(a).mul(a).float().softmax(-1).sum().item()]
    mark(f"stack back to 1024 (rc {rc}), kernels again")
    print("answers with the small stack equal those with the default:", out1 == out2, out1, out2)
    print("limits at the end:", limits())
    print(f"{'step':42} {'GPU used MB':>12} {'torch reserved MB':>18}")
    for step, used, reserved in rows:
        print(f"{step:42} {used:>12} {reserved:>18.0f}")


if __name__ == "__main__":
    main()
