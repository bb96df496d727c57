/** The line protocol between stasis and its CUDA worker process: one request type per operation. */
export interface OpArgs {
  /** Waits until the worker's cuInit has finished; answers how long it took (ms). */
  init: Record<string, never>;
  driverVersion: Record<string, never>;
  state: { pid: number };
  restoreThreadId: { pid: number };
  lock: { pid: number; timeoutMs?: number };
  checkpoint: { pid: number };
  restore: { pid: number; gpuPairs?: { from: string; to: string }[] };
  unlock: { pid: number };
  /** NVML: driver, CUDA version, GPUs with memory. */
  inventory: Record<string, never>;
  /** NVML: compute processes and their GPU memory. */
  gpuProcesses: Record<string, never>;
}

export type Op = keyof OpArgs;

export type WorkerRequest = { [O in Op]: { id: number; op: O } & OpArgs[O] }[Op];

export interface WorkerAnswer {
  id: number;
  ok: boolean;
  result?: unknown;
  ms?: number;
  error?: { name: string; message: string; result?: number };
}
