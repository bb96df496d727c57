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
  close(): void;
}

/**
 * Checkpoints the GPU state of every CUDA process in the tree, so that CRIU can dump them. Returns undefined
 * for a tree without CUDA (no libcuda mapped): then no driver is touched at all.
 */
export async function gpuCheckpoint(pids: number[], events: Events): Promise<GpuCapture | undefined> {
  if ((await cudaCandidates(pids)).length === 0) return undefined;
  const driver = await events.phase("cuda-worker", () => CudaDriver.start());
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
      close: () => driver.close(),
    };
  } catch (err) {
    driver.close();
    throw err;
  }
}
