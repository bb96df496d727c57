import { asStasisError } from "../errors.js";
import type { CudaLease } from "../restore/restore.js";

/** What the warm worker needs of a CUDA driver (CudaDriver; a fake in tests). */
export interface WarmDriver {
  readonly alive: boolean;
  inventory(): Promise<unknown>;
  close(): void;
}

/**
 * One CUDA worker for all of `stasis serve`'s restores, started (cuInit, NVML) before the first one asks, so a
 * restore finds it warm; a worker that died (killed after a call timed out) is replaced on the next lease, once
 * however many restores find it dead at the same time. Restores share it: its calls are matched to answers by
 * id. Without a GPU driver the start fails, is logged, and CPU snapshots are unaffected.
 */
export function warmCudaWorker<D extends WarmDriver>(
  start: () => Promise<D>,
  log: (message: string) => void,
): { lease: () => Promise<CudaLease>; close: () => Promise<void> } {
  let current: Promise<D> | undefined;
  const launch = () => {
    const p = start();
    current = p;
    // Warm NVML too: a restore's free-memory check asks for the inventory.
    p.then((d) => d.inventory()).catch((err) => log(`no warm CUDA worker: ${asStasisError(err).message}`));
    return p;
  };
  void launch(); // its failure is logged above; a lease launches again
  return {
    lease: async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        const p = current ?? launch();
        const driver = await p.catch(() => undefined);
        if (driver?.alive) return { driver: driver as unknown as CudaLease["driver"], release: () => {} };
        if (current === p) void launch(); // the first restore to find it dead replaces it; the others wait for that one
      }
      return { driver: (await current!) as unknown as CudaLease["driver"], release: () => {} }; // cannot start: its error
    },
    // Not awaited: a worker still starting is closed once it is up (or gone by its own start timeout).
    close: async () => {
      void current?.then(
        (d) => d.close(),
        () => undefined,
      );
    },
  };
}
