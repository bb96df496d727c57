/**
 * The CUDA worker: a separate Node process that owns libcuda for stasis. It calls cuInit once and then serves
 * checkpoint calls (one JSON request per line on stdin, one JSON answer per line on stdout), so the driver is
 * initialised once per capture or restore, not per call. stasis kills this process when a call outlives its
 * timeout; a hang or crash in the driver never takes the CLI with it.
 */
import { createInterface } from "node:readline";
import { loadLibCuda, CudaCallError, type LibCuda } from "../native/libcuda.js";
import { loadLibNvml, type LibNvml } from "../native/libnvml.js";
import type { WorkerRequest, WorkerAnswer } from "./_protocol.js";

let cuda: LibCuda | undefined;
let loadError: Error | undefined;
try {
  cuda = loadLibCuda("libcuda.so.1");
} catch (err) {
  loadError = err as Error;
}
// cuInit runs in the background from the start; CUDA calls wait for it, NVML queries do not.
const initStart = performance.now();
let initMs = 0;
const initialised = cuda?.init().then(() => void (initMs = performance.now() - initStart));
initialised?.catch(() => undefined);

function answer(a: WorkerAnswer): void {
  process.stdout.write(JSON.stringify(a) + "\n");
}

let nvml: LibNvml | undefined;
function nvmlLib(): LibNvml {
  nvml ??= loadLibNvml("libnvidia-ml.so.1");
  return nvml;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case "inventory": {
      const n = nvmlLib();
      return { driver: n.driverVersion(), cuda: n.cudaVersion(), gpus: n.gpus() };
    }
    case "gpuProcesses":
      return nvmlLib().processes();
  }
  if (!cuda) throw loadError ?? new Error("libcuda not loaded");
  await initialised;
  switch (req.op) {
    case "init":
      return initMs;
    case "driverVersion":
      return cuda.driverVersion();
    case "state":
      return cuda.getState(req.pid);
    case "restoreThreadId":
      return cuda.restoreThreadId(req.pid);
    case "lock":
      return cuda.lock(req.pid, req.timeoutMs ?? 0);
    case "checkpoint":
      return cuda.checkpoint(req.pid);
    case "restore":
      return cuda.restore(req.pid, req.gpuPairs);
    case "unlock":
      return cuda.unlock(req.pid);
  }
}

answer({
  id: 0,
  ok: loadError === undefined,
  result: "ready",
  error: loadError ? { name: "LoadError", message: loadError.message } : undefined,
});

createInterface({ input: process.stdin }).on("line", (line) => {
  let req: WorkerRequest;
  try {
    req = JSON.parse(line) as WorkerRequest;
  } catch {
    return;
  }
  const started = performance.now();
  handle(req).then(
    (result) => answer({ id: req.id, ok: true, result, ms: performance.now() - started }),
    (err: Error) =>
      answer({
        id: req.id,
        ok: false,
        ms: performance.now() - started,
        error: {
          name: err instanceof CudaCallError ? err.errorName : err.name,
          message: err.message,
          result: err instanceof CudaCallError ? err.result : undefined,
        },
      }),
  );
});
