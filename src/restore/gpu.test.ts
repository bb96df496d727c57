import { test } from "node:test";
import assert from "node:assert/strict";
import { gpuPairs, planGpus } from "./gpu.js";
import type { GpuState } from "../cuda/gpus.js";
import { StasisError } from "../errors.js";
import type { Manifest } from "../store/manifest.js";

const H100 = "NVIDIA H100 80GB HBM3";
const gpu = (index: number, uuid: string, name = H100): GpuState => ({
  index,
  uuid,
  name,
  memoryMiB: 81559,
  memoryUsedMiB: 0,
  driver: "580",
});
const here = [gpu(0, "GPU-aaa"), gpu(1, "GPU-bbb")];

test("without --gpu a GPU goes back to its own UUID, or to the same index and model", () => {
  assert.deepEqual(
    planGpus([{ index: 1, uuid: "GPU-bbb", name: H100 }], here, undefined).map((p) => [p.from, p.to.uuid]),
    [["GPU-bbb", "GPU-bbb"]],
  );
  assert.deepEqual(
    planGpus([{ index: 0, uuid: "GPU-other-host", name: H100 }], here, undefined).map((p) => p.to.uuid),
    ["GPU-aaa"],
  );
  assert.throws(
    () => planGpus([{ index: 0, uuid: "GPU-x", name: "NVIDIA A100" }], here, undefined),
    (e: StasisError) => e.code === "E_GPU_UNAVAILABLE",
  );
});

test("--gpu picks the target by index or UUID and must be the same model", () => {
  const captured = [{ index: 0, uuid: "GPU-aaa", name: H100 }];
  assert.equal(planGpus(captured, here, "1")[0]!.to.uuid, "GPU-bbb");
  assert.equal(planGpus(captured, here, "GPU-bbb")[0]!.to.uuid, "GPU-bbb");
  assert.throws(() => planGpus(captured, here, "7"), /no GPU "7"/);
  assert.throws(
    () => planGpus(captured, [gpu(0, "GPU-c", "NVIDIA A100")], "0"),
    (e: StasisError) => /is a NVIDIA A100/.test(e.message) && /same GPU model/.test(e.hint ?? ""),
  );
  assert.throws(
    () => planGpus([...captured, { index: 1, uuid: "GPU-bbb", name: H100 }], here, "0"),
    (e: StasisError) => e.code === "E_USAGE",
  );
});

test("GPU pairs form a complete one-to-one map, or none when nothing moves", () => {
  const all = [
    { index: 0, uuid: "GPU-aaa" },
    { index: 1, uuid: "GPU-bbb" },
    { index: 2, uuid: "GPU-ccc" },
  ];
  assert.deepEqual(gpuPairs(all, all, [{ from: "GPU-aaa", to: { uuid: "GPU-aaa" } }]), []);
  const moved = gpuPairs(all, all, [{ from: "GPU-aaa", to: { uuid: "GPU-bbb" } }]);
  assert.deepEqual(moved, [
    { from: "GPU-aaa", to: "GPU-bbb" },
    { from: "GPU-bbb", to: "GPU-aaa" },
    { from: "GPU-ccc", to: "GPU-ccc" },
  ]);
  // Another machine: GPUs go by index.
  const there = [
    { index: 0, uuid: "GPU-xxx" },
    { index: 1, uuid: "GPU-yyy" },
  ];
  assert.deepEqual(gpuPairs(all.slice(0, 2), there, [{ from: "GPU-aaa", to: { uuid: "GPU-xxx" } }]), [
    { from: "GPU-aaa", to: "GPU-xxx" },
    { from: "GPU-bbb", to: "GPU-yyy" },
  ]);
});

test("weights are staged on the GPU the engine goes back to, and on none where that is not one GPU", async () => {
  const { stagingGpu } = await import("./restore.js");
  const manifest = (used: { index: number; uuid: string; name: string }[]) =>
    ({ gpu: { processes: [], totalBytes: 0 }, fingerprint: { gpu: { used } } }) as unknown as Manifest;
  const inv = { driver: "580", cuda: "13.0", gpus: here };
  const one = manifest([{ index: 0, uuid: "GPU-aaa", name: H100 }]);
  assert.equal(stagingGpu(one, inv, undefined), "GPU-aaa");
  assert.equal(stagingGpu(one, inv, "1"), "GPU-bbb");
  assert.equal(stagingGpu(one, inv, "9"), undefined); // the CUDA restore's plan reports the bad --gpu
  assert.equal(stagingGpu(one, undefined, undefined), undefined);
  assert.equal(
    stagingGpu(
      manifest([
        { index: 0, uuid: "GPU-aaa", name: H100 },
        { index: 1, uuid: "GPU-bbb", name: H100 },
      ]),
      inv,
      undefined,
    ),
    undefined,
  );
  assert.equal(stagingGpu({ ...one, gpu: undefined } as Manifest, inv, undefined), undefined);
});
