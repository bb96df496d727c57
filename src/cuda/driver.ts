import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { StasisError } from "../errors.js";
import type { CudaProcessState } from "../native/libcuda.js";
import type { GpuInventory, GpuState } from "./gpus.js";
import type { Op, OpArgs, WorkerAnswer } from "./_protocol.js";

/** Default time limits per call; a checkpoint or restore moves GPU memory (GBs) and may take seconds. */
const DEFAULT_TIMEOUT_MS: Record<Op, number> = {
  init: 60_000,
  driverVersion: 30_000,
  state: 10_000,
  restoreThreadId: 10_000,
  lock: 60_000,
  checkpoint: 300_000,
  restore: 300_000,
  unlock: 60_000,
  inventory: 30_000,
  gpuProcesses: 30_000,
};

/**
 * The CUDA worker's calls run on libuv's thread pool (koffi's async calls), 4 threads unless told: the checkpoint
 * of a tensor-parallel tree (a worker per GPU beside the API server) must lock, checkpoint and restore all of its
 * CUDA processes at once, not 4 at a time. Threads of the pool start once, on its first use.
 */
export const WORKER_THREADS = 32;

export function workerEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, UV_THREADPOOL_SIZE: String(WORKER_THREADS) };
}

/**
 * stasis's handle on the CUDA driver's checkpoint API. Calls go to a worker process (src/cuda/worker.ts)
 * that called cuInit once; each call has a time limit, and a call past it kills the worker and fails with
 * E_CUDA_TIMEOUT naming the process and the call. `close()` ends the worker; always call it (in finally).
 */
export class CudaDriver {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (a: WorkerAnswer) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      let a: WorkerAnswer;
      try {
        a = JSON.parse(line) as WorkerAnswer;
      } catch {
        return;
      }
      const p = this.pending.get(a.id);
      if (p) {
        this.pending.delete(a.id);
        p.resolve(a);
      }
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on("exit", (code, signal) => {
      this.dead = new StasisError(
        "E_CUDA",
        `the CUDA worker exited (${signal ?? `status ${code}`})${stderr ? `: ${stderr.trim().split("\n").pop()}` : ""}`,
      );
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    });
  }

  /** Starts the worker and waits until it has initialised the driver. */
  static async start(): Promise<CudaDriver> {
    const worker = fileURLToPath(new URL("./worker.js", import.meta.url));
    const child = spawn(process.execPath, [worker], { stdio: ["pipe", "pipe", "pipe"], env: workerEnv() });
    const driver = new CudaDriver(child);
    const ready = await driver.await(0, "cuInit", undefined, DEFAULT_TIMEOUT_MS.driverVersion);
    if (!ready.ok) {
      driver.close();
      throw new StasisError("E_GPU_UNAVAILABLE", `cannot use the CUDA driver: ${ready.error?.message}`, {
        hint: "GPU snapshots need an NVIDIA driver r570 or newer with libcuda.so.1 loadable (`stasis doctor` checks it)",
      });
    }
    return driver;
  }

  private await(id: number, what: string, pid: number | undefined, timeoutMs: number): Promise<WorkerAnswer> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // The driver call is stuck; the only way to stop it is to end the process making it.
        this.child.kill("SIGKILL");
        reject(
          new StasisError(
            "E_CUDA_TIMEOUT",
            `${what}${pid === undefined ? "" : ` of process ${pid}`} did not finish within ${timeoutMs} ms`,
            {
              hint: "the GPU or driver may be busy or stuck; check `nvidia-smi`",
              details: { pid, call: what },
            },
          ),
        );
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async call<O extends Op>(
    op: O,
    args: OpArgs[O],
    timeoutMs = DEFAULT_TIMEOUT_MS[op],
  ): Promise<{ result: unknown; ms: number }> {
    const id = this.nextId++;
    const pid = (args as { pid?: number }).pid;
    const answer = this.await(id, callName(op), pid, timeoutMs);
    this.child.stdin.write(JSON.stringify({ id, op, ...args }) + "\n");
    const a = await answer;
    if (!a.ok) {
      const outOfMemory = /OUT_OF_MEMORY/.test(a.error?.name ?? "");
      throw new StasisError(
        outOfMemory ? "E_GPU_MEMORY" : "E_CUDA",
        `${callName(op)}${pid === undefined ? "" : ` of process ${pid}`} failed: ${a.error?.message}`,
        {
          hint: outOfMemory ? "free GPU memory on the target GPU (stop other instances) and retry" : undefined,
          details: { pid, call: callName(op), result: a.error?.result },
        },
      );
    }
    return { result: a.result, ms: a.ms ?? 0 };
  }

  /** The GPUs, from NVML (fast; nvidia-smi takes hundreds of ms). */
  async inventory(): Promise<GpuInventory> {
    const r = (await this.call("inventory", {})).result as {
      driver: string;
      cuda: string;
      gpus: Omit<GpuState, "driver">[];
    };
    return { driver: r.driver, cuda: r.cuda, gpus: r.gpus.map((g) => ({ ...g, driver: r.driver })) };
  }

  /** GPU memory per host pid, from NVML. */
  async gpuMemoryByPid(): Promise<Map<number, { bytes: number; uuids: string[] }>> {
    const out = new Map<number, { bytes: number; uuids: string[] }>();
    for (const p of (await this.call("gpuProcesses", {})).result as { pid: number; bytes: number; uuid: string }[]) {
      const e = out.get(p.pid) ?? { bytes: 0, uuids: [] };
      e.bytes += p.bytes;
      if (!e.uuids.includes(p.uuid)) e.uuids.push(p.uuid);
      out.set(p.pid, e);
    }
    return out;
  }

  async state(pid: number): Promise<CudaProcessState> {
    return (await this.call("state", { pid })).result as CudaProcessState;
  }

  /** False once the worker has exited (killed after a call timed out, or crashed). */
  get alive(): boolean {
    return !this.dead;
  }

  close(): void {
    if (!this.dead) this.child.kill("SIGKILL");
  }
}

function callName(op: Op): string {
  return (
    {
      init: "cuInit",
      driverVersion: "cuDriverGetVersion",
      state: "cuCheckpointProcessGetState",
      restoreThreadId: "cuCheckpointProcessGetRestoreThreadId",
      lock: "cuCheckpointProcessLock",
      checkpoint: "cuCheckpointProcessCheckpoint",
      restore: "cuCheckpointProcessRestore",
      unlock: "cuCheckpointProcessUnlock",
      inventory: "NVML inventory",
      gpuProcesses: "NVML process list",
    } as const
  )[op];
}
