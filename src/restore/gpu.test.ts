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
    (e: StasisError) => e.code === "E_USAGE" && /names 1 GPU, but the snapshot used 2/.test(e.message),
  );
});

test("--gpu takes one GPU per captured GPU, in the order of their indexes: a tensor-parallel snapshot moved", () => {
  const four = [gpu(0, "GPU-aaa"), gpu(1, "GPU-bbb"), gpu(2, "GPU-ccc"), gpu(3, "GPU-ddd")];
  // Captured on GPUs 1 and 0 (listed out of order): rank order is index order.
  const captured = [
    { index: 1, uuid: "GPU-bbb", name: H100 },
    { index: 0, uuid: "GPU-aaa", name: H100 },
  ];
  const moves = (target: string) => planGpus(captured, four, target).map((p) => [p.from, p.to.uuid]);
  assert.deepEqual(moves("2,3"), [
    ["GPU-aaa", "GPU-ccc"],
    ["GPU-bbb", "GPU-ddd"],
  ]);
  assert.deepEqual(moves(" GPU-bbb , 0"), [
    ["GPU-aaa", "GPU-bbb"],
    ["GPU-bbb", "GPU-aaa"],
  ]);
  assert.throws(
    () => planGpus(captured, four, "2"),
    (e: StasisError) =>
      e.code === "E_USAGE" &&
      /names 1 GPU, but the snapshot used 2 \(0,1\)/.test(e.message) &&
      /--gpu 1,0/.test(e.hint!),
  );
  assert.throws(
    () => planGpus(captured, four, "2,2"),
    (e: StasisError) => e.code === "E_USAGE" && /names GPU 2 \(GPU-ccc\) twice/.test(e.message),
  );
  assert.throws(
    () => planGpus(captured, four, "GPU-ccc,2"),
    (e: StasisError) => e.code === "E_USAGE" && /twice/.test(e.message),
  );
  assert.throws(
    () => planGpus(captured, four, "2,"),
    (e: StasisError) => e.code === "E_USAGE" && /empty/.test(e.message),
  );
  assert.throws(
    () => planGpus(captured, four, "2,9"),
    (e: StasisError) => e.code === "E_GPU_UNAVAILABLE" && /no GPU "9"/.test(e.message),
  );
  assert.throws(
    () => planGpus(captured, [gpu(0, "GPU-aaa"), gpu(1, "GPU-x", "NVIDIA A100")], "0,1"),
    (e: StasisError) => /GPU 1 is a NVIDIA A100; the snapshot's GPU 1 was a/.test(e.message),
  );
});

test("GPU pairs stay one-to-one and keep every planned move, for any moves of up to eight GPUs", () => {
  // A small deterministic generator: the same cases on every run.
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 500; round++) {
    const count = 1 + next(8);
    const all = Array.from({ length: count }, (_, i) => ({ index: i, uuid: `GPU-${i}` }));
    const used = all.filter(() => next(2) === 0);
    if (used.length === 0) used.push(all[0]!);
    const targets = [...all].sort(() => next(3) - 1).slice(0, used.length);
    const plan = used.map((u, i) => ({ from: u.uuid, to: { uuid: targets[i]!.uuid } }));
    const pairs = gpuPairs(all, all, plan);
    const moved = plan.some((p) => p.from !== p.to.uuid);
    if (!moved) {
      assert.deepEqual(pairs, [], "nothing moves: no map");
      continue;
    }
    assert.deepEqual(pairs.map((p) => p.from).sort(), all.map((g) => g.uuid).sort(), "every GPU is mapped");
    assert.deepEqual(pairs.map((p) => p.to).sort(), all.map((g) => g.uuid).sort(), "onto distinct GPUs");
    for (const p of plan) assert.equal(pairs.find((x) => x.from === p.from)?.to, p.to.uuid, JSON.stringify(plan));
  }
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

test("a TP=2 snapshot moved with --gpu: each target GPU must have room for its own rank", async () => {
  const { prepareGpuRestore } = await import("./gpu.js");
  const GiB = 2 ** 30;
  const four = [gpu(0, "GPU-aaa"), gpu(1, "GPU-bbb"), gpu(2, "GPU-ccc"), gpu(3, "GPU-ddd")];
  four[2]!.memoryUsedMiB = 60 * 1024; // GPU 2 is busy: 19.6 GiB free
  const used = [
    { index: 0, uuid: "GPU-aaa", name: H100, memoryMiB: 81559 },
    { index: 1, uuid: "GPU-bbb", name: H100, memoryMiB: 81559 },
  ];
  const manifest = {
    // The API server (a CUDA process on no GPU) and one worker per GPU, 30 and 10 GiB.
    gpu: {
      processes: [
        { nsPid: 1, gpuBytes: 0, gpuUuids: [] },
        { nsPid: 5, gpuBytes: 30 * GiB, gpuUuids: ["GPU-aaa"] },
        { nsPid: 6, gpuBytes: 10 * GiB, gpuUuids: ["GPU-bbb"] },
      ],
      totalBytes: 40 * GiB,
    },
    fingerprint: {
      gpu: { used, all: four.map(({ index, uuid, name, memoryMiB }) => ({ index, uuid, name, memoryMiB })) },
    },
  } as unknown as Manifest;
  const inventory = { driver: "580", cuda: "13.0", gpus: four };
  const driver = {} as Parameters<typeof prepareGpuRestore>[2]; // only the restore itself would call it
  // Rank 0 (30 GiB) onto the busy GPU 2 is refused, naming it; rank 1 (10 GiB) fits there.
  await assert.rejects(
    prepareGpuRestore(manifest, "2,3", driver, inventory),
    (e: StasisError) =>
      e.code === "E_GPU_MEMORY" && /^GPU 2 \(GPU-ccc\) has 19\.6 GiB free; restoring needs 30\.5/.test(e.message),
  );
  assert.ok(await prepareGpuRestore(manifest, "3,2", driver, inventory));
});
