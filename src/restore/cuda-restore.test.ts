/** The GPU plan in a swap (planOrWait): made at once where the GPU has room, else once the other server has slept. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Events, recordTimeline } from "../events.js";
import { StasisError } from "../errors.js";
import { runPipeline } from "../pipeline/pipeline.js";
import type { CudaDriver } from "../cuda/driver.js";
import type { GpuInventory } from "../cuda/gpus.js";
import type { Manifest } from "../store/manifest.js";
import { planOrWait } from "./cuda-restore.js";

const H100 = "NVIDIA H100 80GB HBM3";
const GiB = 2 ** 30;
const manifest = {
  gpu: { processes: [{ nsPid: 7, gpuBytes: 1.2 * GiB, gpuUuids: ["GPU-aaa"] }], totalBytes: 1.2 * GiB },
  fingerprint: { gpu: { used: [{ index: 0, uuid: "GPU-aaa", name: H100, memoryMiB: 81559 }] } },
} as unknown as Manifest;
/** The GPU with `usedGiB` in use (the server going off: awake ~72 GiB, asleep ~1.2 GiB). */
const inventory = (usedGiB: number, name = H100, uuid = "GPU-aaa"): GpuInventory => ({
  driver: "580",
  cuda: "13.0",
  gpus: [{ index: 0, uuid, name, memoryMiB: 81559, memoryUsedMiB: usedGiB * 1024, driver: "580" }],
});
const driverSaying = (...answers: GpuInventory[]) =>
  Promise.resolve({ inventory: async () => answers.shift() ?? answers[0] } as unknown as CudaDriver);

async function plan(answers: GpuInventory[], gate: Promise<void>) {
  const events = new Events();
  const timeline = recordTimeline(events);
  let waited = false;
  const result = await runPipeline(events, {}, (p) =>
    planOrWait(p, manifest, undefined, driverSaying(...answers), () => {
      waited = true;
      return p.step("gpu-wait", () => gate);
    }),
  );
  timeline.stop();
  return { result, waited, phases: timeline.phases.map((x) => `${x.name}${x.ok ? "" : " (failed)"}`) };
}

test("a GPU with room beside the server going off: planned at once, no wait", async () => {
  const r = await plan([inventory(40)], new Promise(() => undefined)); // a gate that never opens
  assert.ok(r.result);
  assert.equal(r.waited, false);
  assert.deepEqual(r.phases, ["gpu-plan"]);
});

test("a GPU still full: no failure, the plan is made again once the other has slept", async () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let settled = false;
  const planned = plan([inventory(79.5), inventory(1.2)], gate).then((r) => ((settled = true), r));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(settled, false, "it waits for the sleep");
  open();
  const r = await planned;
  assert.ok(r.result);
  assert.equal(r.waited, true);
  assert.deepEqual(r.phases, ["gpu-plan", "gpu-wait", "gpu-plan"], "no phase reads as failed");
});

test("any other refusal is not waited out", async () => {
  await assert.rejects(
    plan([inventory(1, "NVIDIA A100-SXM4-80GB", "GPU-other")], new Promise(() => undefined)),
    (e: StasisError) => e.code === "E_GPU_UNAVAILABLE",
  );
});
