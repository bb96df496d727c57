"""Probe: can vLLM's CUDA graph pool live in its sleep-mode allocator (STASIS_VLLM_GRAPHS=sleep), be released by a
sleep and mapped fresh by a wake, with replays still right? Runs in seconds, without a model: weights and a KV
cache in the allocator's tagged pools as vLLM makes them, a graph of matmuls captured into the patched global pool,
then sleep (weights kept, as at level 1, so answers can be compared), empty_cache, wake, replay. Prints a verdict."""

import sys
import time

import torch
import vllm  # noqa: F401  (install_from_env acts only where vLLM is loaded)
from vllm.device_allocator.cumem import CuMemAllocator

sys.path.insert(0, "python")
from stasis_engine.vllm import _graphs  # noqa: E402


def used() -> int:
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return total - free


def main() -> int:
    torch.cuda.set_device(0)
    allocator = CuMemAllocator.get_instance()
    with allocator.use_memory_pool(tag="weights"):
        w = [torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64 for _ in range(8)]
    with allocator.use_memory_pool(tag="kv_cache"):
        kv = torch.zeros(256 << 20, dtype=torch.uint8, device="cuda")
    x = torch.randn(512, 4096, device="cuda", dtype=torch.bfloat16)
    pool = _graphs._sleep_pool_id()  # what the hook gives vLLM's graph wrappers in a sleep-mode server

    def forward(inp: torch.Tensor) -> torch.Tensor:
        h = inp
        for m in w:
            h = torch.relu(h @ m) + h  # intermediates land in the graph pool
        return h.float().sum(dim=1)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        forward(x)
    torch.cuda.current_stream().wait_stream(s)
    before_capture = used()
    graphs, outs = [], []
    for n in (512, 256, 128):  # several graphs sharing one pool, as vLLM's sizes do
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=pool):
            outs.append(forward(x[:n]))
        graphs.append(g)
    after_capture = used()
    for g in graphs:
        g.replay()
    want = [o.clone() for o in outs]
    mem = _graphs.gpu_memory(allocator.pointer_to_data)
    print("graph pool tags:", mem["sleep_pool_tags"])
    print(f"captured: +{(after_capture - before_capture) / 2**20:.1f} MiB")
    t0 = time.perf_counter()
    allocator.sleep(offload_tags=("weights",))
    asleep = used()
    print(f"sleep: {(after_capture - asleep) / 2**20:.1f} MiB released in {time.perf_counter() - t0:.3f} s")
    torch.cuda.empty_cache()
    t0 = time.perf_counter()
    allocator.wake_up(["weights"])
    allocator.wake_up(["kv_cache", _graphs.GRAPHS_TAG])
    print(f"wake: {time.perf_counter() - t0:.3f} s, used back to {(used() - asleep) / 2**20:.1f} MiB over asleep")
    ok = True
    for i, g in enumerate(graphs):
        outs[i].zero_()
        g.replay()
        torch.cuda.synchronize()
        same = torch.equal(outs[i], want[i])
        ok &= same
        print(f"graph {i}: replay after sleep/wake {'matches' if same else 'DIFFERS'}")
    del kv
    print("VERDICT graph-pool-in-sleep-pool:", "PASS" if ok and after_capture - asleep > 0 else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
