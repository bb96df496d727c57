/**
 * The only module that calls libcuda: the CUDA driver's process checkpoint API (r570+), through koffi.
 * It is loaded only inside the CUDA worker process (src/cuda/worker.ts), never in the CLI's own process:
 * a driver call can block for long or crash, and the worker can be killed without taking stasis down.
 */
import koffi from "koffi";

export const PROCESS_STATES = ["running", "locked", "checkpointed", "failed"] as const;
export type CudaProcessState = (typeof PROCESS_STATES)[number];

export class CudaCallError extends Error {
  constructor(
    readonly call: string,
    readonly result: number,
    readonly errorName: string,
    detail: string,
  ) {
    super(`${call} failed: ${errorName} (${result}): ${detail}`);
  }
}

// Every args struct is 64 bytes; reserved fields must be zero (koffi zero-fills omitted members).
const LockArgs = koffi.struct("CUcheckpointLockArgs", {
  timeoutMs: "uint32",
  reserved0: "uint32",
  reserved1: koffi.array("uint64", 7),
});
const CheckpointArgs = koffi.struct("CUcheckpointCheckpointArgs", { reserved: koffi.array("uint64", 8) });
const UnlockArgs = koffi.struct("CUcheckpointUnlockArgs", { reserved: koffi.array("uint64", 8) });
const Uuid = koffi.struct("CUuuid", { bytes: koffi.array("uint8", 16) });
const GpuPair = koffi.struct("CUcheckpointGpuPair", { oldUuid: Uuid, newUuid: Uuid });
const RestoreArgs = koffi.struct("CUcheckpointRestoreArgs", {
  gpuPairs: "void *",
  gpuPairsCount: "uint32",
  reserved: koffi.array("char", 44),
  reserved1: "uint64",
});

export interface LibCuda {
  /** cuInit(0), on one of koffi's threads: the caller stays responsive while the driver initialises. */
  init(): Promise<void>;
  driverVersion(): number;
  getState(pid: number): CudaProcessState;
  restoreThreadId(pid: number): number;
  lock(pid: number, timeoutMs: number): Promise<void>;
  checkpoint(pid: number): Promise<void>;
  restore(pid: number, gpuPairs?: { from: string; to: string }[]): Promise<void>;
  unlock(pid: number): Promise<void>;
}

/** "GPU-8a0f...-..." (nvidia-smi's form) -> the 16 bytes of a CUuuid. */
export function uuidBytes(uuid: string): number[] {
  const hex = uuid.replace(/^GPU-/, "").replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GPU UUID: ${uuid}`);
  return Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
}

export function loadLibCuda(path = "libcuda.so.1"): LibCuda {
  const lib = koffi.load(path);
  const cuInit = lib.func("int cuInit(unsigned int flags)");
  const cuDriverGetVersion = lib.func("int cuDriverGetVersion(_Out_ int *version)");
  const cuGetErrorName = lib.func("int cuGetErrorName(int error, _Out_ const char **name)");
  const cuGetErrorString = lib.func("int cuGetErrorString(int error, _Out_ const char **str)");
  const getState = lib.func("int cuCheckpointProcessGetState(int pid, _Out_ int *state)");
  const getTid = lib.func("int cuCheckpointProcessGetRestoreThreadId(int pid, _Out_ int *tid)");
  const lock = lib.func("int cuCheckpointProcessLock(int pid, CUcheckpointLockArgs *args)");
  const checkpoint = lib.func("int cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs *args)");
  const restore = lib.func("int cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs *args)");
  const unlock = lib.func("int cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs *args)");

  const fail = (call: string, result: number): CudaCallError => {
    const name: (string | null)[] = [null];
    const str: (string | null)[] = [null];
    cuGetErrorName(result, name);
    cuGetErrorString(result, str);
    return new CudaCallError(call, result, name[0] ?? `CUDA error ${result}`, str[0] ?? "");
  };
  const checkSync = (call: string, result: number) => {
    if (result !== 0) throw fail(call, result);
  };
  // Long calls run on koffi's worker threads, so checkpoints of several processes proceed in parallel.
  const callAsync = (call: string, fn: ReturnType<typeof lib.func>, ...args: unknown[]) =>
    new Promise<void>((resolve, reject) => {
      fn.async(...args, (err: unknown, result: number) => {
        if (err) reject(err);
        else if (result !== 0) reject(fail(call, result));
        else resolve();
      });
    });

  return {
    init: () => callAsync("cuInit", cuInit, 0),
    driverVersion() {
      const v = [0];
      checkSync("cuDriverGetVersion", cuDriverGetVersion(v));
      return v[0]!;
    },
    getState(pid) {
      const s = [0];
      checkSync("cuCheckpointProcessGetState", getState(pid, s));
      return PROCESS_STATES[s[0]!] ?? "failed";
    },
    restoreThreadId(pid) {
      const t = [0];
      checkSync("cuCheckpointProcessGetRestoreThreadId", getTid(pid, t));
      return t[0]!;
    },
    lock: (pid, timeoutMs) =>
      callAsync("cuCheckpointProcessLock", lock, pid, { timeoutMs, reserved0: 0, reserved1: [0, 0, 0, 0, 0, 0, 0] }),
    checkpoint: (pid) => callAsync("cuCheckpointProcessCheckpoint", checkpoint, pid, null),
    restore(pid, gpuPairs) {
      if (!gpuPairs || gpuPairs.length === 0) return callAsync("cuCheckpointProcessRestore", restore, pid, null);
      const pairs = gpuPairs.map((p) => ({
        oldUuid: { bytes: uuidBytes(p.from) },
        newUuid: { bytes: uuidBytes(p.to) },
      }));
      const buf = koffi.alloc(GpuPair, pairs.length);
      koffi.encode(buf, koffi.array(GpuPair, pairs.length), pairs);
      return callAsync("cuCheckpointProcessRestore", restore, pid, {
        gpuPairs: buf,
        gpuPairsCount: pairs.length,
      }).finally(() => koffi.free(buf));
    },
    unlock: (pid) => callAsync("cuCheckpointProcessUnlock", unlock, pid, null),
  };
}

// Keep the struct types referenced so their declarations are registered with koffi before use.
void [LockArgs, CheckpointArgs, UnlockArgs, RestoreArgs];
