import type { CudaDriver } from "../cuda/driver.js";
import type { Manifest } from "../store/manifest.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { prepareGpuRestore, type GpuRestore } from "./gpu.js";
import { asStasisError } from "../errors.js";

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
 * In a swap (`gpuFree`: the server going off has freed the GPU's memory), the wait for it as one step "gpu-wait",
 * however many ask; undefined outside a swap.
 */
export function gpuWait(p: Pipeline, gpuFree: Promise<void> | undefined): (() => Promise<void>) | undefined {
  let waiting: Promise<void> | undefined;
  return gpuFree && (() => (waiting ??= p.step("gpu-wait", () => gpuFree)));
}

/**
 * Step "gpu-plan" as planGpuRestore, in a swap (`room`: the wait for the server going off to free the GPU's memory):
 * a GPU without the room yet (that server still holds it) is no failure, the plan is made again after the wait.
 */
export function planOrWait(
  p: Pipeline,
  m: Manifest,
  target: string | undefined,
  driver: Promise<CudaDriver>,
  room: (() => Promise<void>) | undefined,
): Promise<GpuRestore | undefined> {
  if (!room) return planGpuRestore(p, m, target, driver);
  const first = p.step("gpu-plan", async () => {
    const d = await driver;
    try {
      return { plan: await prepareGpuRestore(m, target, d, await d.inventory()) };
    } catch (err) {
      if (asStasisError(err).code !== "E_GPU_MEMORY") throw err;
      return { noRoomYet: true as const };
    }
  });
  const plan = first.then(async (r) => {
    if (!("noRoomYet" in r)) return r.plan;
    await room();
    return planGpuRestore(p, m, target, driver);
  });
  plan.catch(() => undefined); // the CUDA restore's to report
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
