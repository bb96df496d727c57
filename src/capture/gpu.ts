import type { Events } from "../events.js";
import { CudaDriver } from "../cuda/driver.js";
import type { GpuInventory } from "../cuda/gpus.js";
import { checkpointAll, cudaCandidates, cudaProcesses, restoreAll, type CudaProcess } from "../cuda/tree.js";
import type { Manifest } from "../store/manifest.js";

/** The GPU side of a capture, once its processes are checkpointed. */
export interface GpuCapture {
  processes: CudaProcess[];
  inventory: GpuInventory | undefined;
  usedGpuUuids: string[];
  /** --leave-running: give the original its GPU state back. */
  resume(events: Events): Promise<void>;
  manifest(): NonNullable<Manifest["gpu"]>;
  /** The GPUs as they are now (a hibernated instance's take checks there is room for its state). */
  inventoryNow(): Promise<GpuInventory>;
  close(): void;
}

/**
 * The CUDA worker, started while the server is warmed up when its tree already maps libcuda, so that the
 * checkpoint does not wait for it (docs/decisions/0009-capture-dump.md). Hand it to `gpuCheckpoint`, or to
 * `closeAhead`.
 */
export function cudaWorkerAhead(pids: number[]): Promise<CudaDriver | undefined> {
  const started = cudaCandidates(pids).then((c) => (c.length === 0 ? undefined : CudaDriver.start()));
  started.catch(() => undefined); // gpuCheckpoint awaits it (and reports its error) or closeAhead ends it
  return started;
}

/** Ends a worker started ahead that no checkpoint took. */
export function closeAhead(ahead: Promise<CudaDriver | undefined> | undefined): void {
  ahead?.then(
    (d) => d?.close(),
    () => undefined,
  );
}

/**
 * Checkpoints the GPU state of every CUDA process in the tree, so that CRIU can dump them. Returns undefined
 * for a tree without CUDA (no libcuda mapped): then no driver is touched at all. A worker started ahead
 * (`cudaWorkerAhead`) is used, or closed, here.
 */
export async function gpuCheckpoint(
  pids: number[],
  events: Events,
  ahead?: Promise<CudaDriver | undefined>,
): Promise<GpuCapture | undefined> {
  if ((await cudaCandidates(pids)).length === 0) {
    closeAhead(ahead);
    return undefined;
  }
  const driver = await events.phase("cuda-worker", async () => (await ahead) ?? CudaDriver.start());
  try {
    const [procs, inventory] = await Promise.all([cudaProcesses(driver, pids), driver.inventory()]);
    if (procs.length === 0) {
      driver.close();
      return undefined;
    }
    await checkpointAll(driver, procs, events);
    const usedGpuUuids = [...new Set(procs.flatMap((p) => p.gpuUuids))];
    return {
      processes: procs,
      inventory,
      usedGpuUuids,
      resume: (ev) => restoreAll(driver, procs, ev),
      manifest: () => ({
        processes: procs.map((p) => ({ nsPid: p.nsPid, gpuBytes: p.gpuBytes, gpuUuids: p.gpuUuids })),
        totalBytes: procs.reduce((a, p) => a + p.gpuBytes, 0),
      }),
      inventoryNow: () => driver.inventory(),
      close: () => driver.close(),
    };
  } catch (err) {
    driver.close();
    throw err;
  }
}
