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
  dataParallel: number;
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
    dataParallel: num(first.data_parallel_size),
    live,
  };
}

/**
 * Refuses what a capture of this server cannot do right, before it dumps or sleeps anything:
 * - with `sleeps` (weights dumped per rank, the sleep and wake through `/collective_rpc`), data parallelism: vLLM's
 *   `/collective_rpc` answers for the first engine only (v1/engine/core_client.py: `AsyncMPClient` calls the first
 *   engine, `DPLBAsyncMPClient.call_utility_async` calls them all and keeps the first answer), so the other engines'
 *   workers are not checked, and where they run the call their rank r writes the same weights file as the first's;
 * - with several workers, an all-reduce that maps other workers' GPU memory: the CUDA checkpoint of such a worker
 *   fails or hangs. Each path is named with its switch. NCCL itself is let through (what its transports need is for
 *   a multi-GPU run to show: docs/tensor-parallel.md).
 */
export function refuseUnsupported(setup: ParallelSetup, sleeps: boolean): void {
  if (sleeps && setup.dataParallel > 1) {
    throw new StasisError(
      "E_ENGINE",
      `the server runs ${setup.dataParallel} data-parallel engines; vLLM's /collective_rpc answers for the first ` +
        "one only, so their weights cannot be dumped and refilled per worker",
      {
        hint: "serve each data-parallel replica as a server of its own (--data-parallel-size 1) and capture each",
        details: { dataParallel: setup.dataParallel },
      },
    );
  }
  if (setup.ranks < 2) return;
  const found = CROSS_PROCESS_ALL_REDUCE.filter((p) => (setup.live[p.key] ?? []).length > 0);
  if (found.length === 0) return;
  throw new StasisError(
    "E_ENGINE",
    `the ${setup.ranks} workers share GPU memory the CUDA checkpoint cannot take: ` +
      found.map((p) => `${p.what} in rank ${setup.live[p.key]!.join(", ")}`).join("; "),
    {
      hint:
        `turn ${found.length === 1 ? "it" : "them"} off: ` +
        `${found.map((p) => p.fix).join("; ")} (docs/tensor-parallel.md)`,
      details: { live: setup.live },
    },
  );
}
