import type { CudaDriver } from "../cuda/driver.js";
import type { Manifest } from "../store/manifest.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { prepareGpuRestore, type GpuRestore } from "./gpu.js";

/**
 * Step "gpu-plan", in the background beside CRIU: which GPU each captured one goes back to, and whether it has the
 * memory free. Its failure is the CUDA restore's to report.
 */
export function planGpuRestore(
  p: Pipeline,
  m: Manifest,
  target: string | undefined,
  driver: Promise<CudaDriver>,
): Promise<GpuRestore | undefined> {
  const plan = p.step("gpu-plan", async () => {
    const d = await driver;
    return prepareGpuRestore(m, target, d, await d.inventory());
  });
  plan.catch(() => undefined);
  return plan;
}

/**
 * Steps "cuda-init" and the CUDA restore of the tree rooted at `root`. The free-memory check must pass before the CUDA
 * restore (one that runs out of GPU memory can leave the process stuck in the driver); it ran alongside CRIU, so only
 * a failure costs a wait.
 */
export async function restoreCuda(
  p: Pipeline,
  plan: Promise<GpuRestore | undefined>,
  driver: Promise<CudaDriver>,
  root: number,
): Promise<void> {
  const gpu = await plan;
  const d = await driver;
  await p.step(
    "cuda-init",
    async () => ({ initMs: (await d.call("init", {})).result as number }),
    (r) => ({ detail: r }),
  );
  if (gpu) await gpu.restore(root, p.events);
}
