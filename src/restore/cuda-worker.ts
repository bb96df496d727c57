import { CudaDriver } from "../cuda/driver.js";
import type { Manifest } from "../store/manifest.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";

/** A CUDA worker for one restore; `release()` when done (closes it, or hands a shared one back). */
export interface CudaLease {
  driver: CudaDriver;
  release: () => void;
}

/** A worker of the restore's own, closed when it ends. */
export async function ownCudaDriver(): Promise<CudaLease> {
  const driver = await CudaDriver.start();
  return { driver, release: () => driver.close() };
}

/** The restore's CUDA worker, starting; `lease` gives it back early (the restore gives it back as it ends). */
export interface CudaWorker {
  driver: Promise<CudaDriver>;
  lease: Deferred;
}

/**
 * Step "cuda-worker", in the background: a snapshot with GPU state starts its CUDA worker (or takes the daemon's
 * warm one) first; its cuInit, and NVML's look at the GPUs' free memory, run alongside CRIU. Nothing on the path to
 * CRIU waits for it: the fingerprint's GPU facts are read from /proc. Undefined for a snapshot without GPU state.
 */
export function startCudaWorker(
  p: Pipeline,
  m: Manifest,
  start: () => Promise<CudaLease> = ownCudaDriver,
): CudaWorker | undefined {
  if (!m.gpu) return undefined;
  const leased = p.step("cuda-worker", start);
  leased.catch(() => undefined); // its failure is the CUDA restore's to report, should it come to that
  // Not awaited: a worker still starting must not hold up the restore's end.
  const lease = p.defer(
    "the CUDA worker",
    () =>
      void leased.then(
        (l) => l.release(),
        () => undefined,
      ),
  );
  const driver = leased.then((l) => l.driver);
  driver.catch(() => undefined);
  return { driver, lease };
}
