import { StasisError } from "../errors.js";
import type { RankResult } from "./vllm-ranks.js";

/**
 * An all-reduce path of vLLM's tensor-parallel group that maps other workers' GPU memory into each worker, which
 * the CUDA checkpoint cannot take (its documented limits: no IPC memory), with the switch that turns it off.
 * Why each: docs/tensor-parallel.md.
 */
const CROSS_PROCESS_ALL_REDUCE = [
  {
    key: "custom",
    what: "vLLM's custom all-reduce (CUDA IPC buffers, registered by address in the CUDA graphs)",
    fix: "vllm serve --disable-custom-all-reduce",
  },
  {
    key: "symm_mem",
    what: "torch symmetric memory all-reduce (a multicast object over every worker's buffer)",
    fix: "VLLM_ALLREDUCE_USE_SYMM_MEM=0 in its environment (stasis capture --env)",
  },
  {
    key: "flashinfer",
    what: "FlashInfer's all-reduce (CUDA IPC workspaces)",
    fix: "VLLM_ALLREDUCE_USE_FLASHINFER=0 in its environment (stasis capture --env)",
  },
] as const;

/** What the workers said of their parallel setup (`stasis_parallel`), summed up for the capture's log. */
export interface ParallelSetup {
  ranks: number;
  tensorParallel: number;
  pipelineParallel: number;
  /** Per all-reduce path, the ranks where it is live. */
  live: Record<string, number[]>;
}

export function parallelSetup(results: RankResult[]): ParallelSetup {
  const first = results[0] ?? {};
  const live: Record<string, number[]> = {};
  for (const r of results) {
    const paths = (r.all_reduce ?? {}) as Record<string, unknown>;
    for (const [key, on] of Object.entries(paths)) {
      if (on === true) (live[key] ??= []).push(typeof r.rank === "number" ? r.rank : -1);
    }
  }
  const num = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : 1);
  return {
    ranks: results.length,
    tensorParallel: num(first.tensor_parallel_size),
    pipelineParallel: num(first.pipeline_parallel_size),
    live,
  };
}

/**
 * Refuses a multi-worker server whose all-reduce maps other workers' GPU memory: the CUDA checkpoint of such a
 * worker fails or hangs, so the capture stops before it dumps or sleeps anything, naming each path and its switch.
 * NCCL itself is let through (what its transports need is for a multi-GPU run to show: docs/tensor-parallel.md).
 */
export function refuseCrossProcessAllReduce(setup: ParallelSetup): void {
  if (setup.ranks < 2) return;
  const found = CROSS_PROCESS_ALL_REDUCE.filter((p) => (setup.live[p.key] ?? []).length > 0);
  if (found.length === 0) return;
  throw new StasisError(
    "E_ENGINE",
    `the ${setup.ranks} workers share GPU memory the CUDA checkpoint cannot take: ` +
      found.map((p) => `${p.what} in rank ${setup.live[p.key]!.join(", ")}`).join("; "),
    {
      hint: `turn ${found.length === 1 ? "it" : "them"} off: ${found.map((p) => p.fix).join("; ")} (docs/tensor-parallel.md)`,
      details: { live: setup.live },
    },
  );
}
