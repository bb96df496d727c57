import { test } from "node:test";
import assert from "node:assert/strict";
import { compareFingerprints, cpuIdentity } from "./fingerprint.js";
import type { Fingerprint } from "../store/manifest.js";

test("the CPU identity is the model and a digest of the sorted flags", () => {
  const a = cpuIdentity("model name\t: Intel Xeon\nflags\t\t: sse avx fpu\n");
  const b = cpuIdentity("model name\t: Intel Xeon\nflags\t\t: fpu sse avx\n");
  assert.equal(a.cpuModel, "Intel Xeon");
  assert.equal(a.cpuFlags, b.cpuFlags);
  assert.notEqual(cpuIdentity("flags : fpu avx512f\n").cpuFlags, a.cpuFlags);
});

test("mismatches that break a restore are listed; a different CRIU version is not one", () => {
  const base: Fingerprint = { arch: "x64", kernel: "6.18", cpuModel: "X", cpuFlags: "f1", criuVersion: "4.2.1" };
  assert.deepEqual(compareFingerprints(base, { ...base, criuVersion: "4.3" }), []);
  assert.deepEqual(
    compareFingerprints(base, { ...base, kernel: "6.1", cpuFlags: "f2" }).map((m) => m.field),
    ["kernel", "cpuFlags"],
  );
  const gpu: Fingerprint = {
    ...base,
    gpu: {
      driver: "580.1",
      cuda: "13.0",
      models: ["NVIDIA H100 80GB HBM3"],
      used: [{ index: 0, uuid: "GPU-a", name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 }],
    },
  };
  assert.deepEqual(
    compareFingerprints(gpu, { ...gpu, gpu: { ...gpu.gpu!, used: [] } }),
    [],
    "which GPUs are in use here does not matter",
  );
  assert.deepEqual(
    compareFingerprints(gpu, base).map((m) => m.field),
    ["gpu.driver", "gpu.model"],
  );
  assert.deepEqual(
    compareFingerprints(gpu, { ...gpu, gpu: { ...gpu.gpu!, driver: "570.1" } }).map((m) => m.field),
    ["gpu.driver"],
  );
});
