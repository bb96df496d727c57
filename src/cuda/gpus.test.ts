import { test } from "node:test";
import assert from "node:assert/strict";
import { parseGpuCsv } from "./gpus.js";
import { uuidBytes } from "../native/libcuda.js";

test("nvidia-smi's CSV parses into GPUs", () => {
  const gpus = parseGpuCsv(
    "0, GPU-8a0f1c2d-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559, 2394, 580.159.04\n",
  );
  assert.deepEqual(gpus, [
    {
      index: 0,
      uuid: "GPU-8a0f1c2d-1111-2222-3333-444455556666",
      name: "NVIDIA H100 80GB HBM3",
      memoryMiB: 81559,
      memoryUsedMiB: 2394,
      driver: "580.159.04",
    },
  ]);
});

test("a GPU UUID becomes the 16 bytes of a CUuuid", () => {
  const b = uuidBytes("GPU-8a0f1c2d-1111-2222-3333-444455556666");
  assert.equal(b.length, 16);
  assert.deepEqual(b.slice(0, 4), [0x8a, 0x0f, 0x1c, 0x2d]);
  assert.throws(() => uuidBytes("GPU-xyz"), /not a GPU UUID/);
});

test("the GPU identity is read from /proc/driver/nvidia without initialising any library", async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { gpuIdentityFromProc } = await import("./gpus.js");
  const root = mkdtempSync(join(tmpdir(), "nv-"));
  try {
    writeFileSync(
      join(root, "version"),
      "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build\nGCC version: gcc 13\n",
    );
    mkdirSync(join(root, "gpus", "0000:00:05.0"), { recursive: true });
    writeFileSync(
      join(root, "gpus", "0000:00:05.0", "information"),
      "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 34\nGPU UUID: \t GPU-8a0f1c2d-1111-2222-3333-444455556666\n",
    );
    const inv = await gpuIdentityFromProc(root);
    assert.equal(inv?.driver, "580.159.04");
    assert.deepEqual(
      inv?.gpus.map((g) => [g.index, g.name, g.uuid]),
      [[0, "NVIDIA H100 80GB HBM3", "GPU-8a0f1c2d-1111-2222-3333-444455556666"]],
    );
    assert.equal(await gpuIdentityFromProc(join(root, "none")), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
