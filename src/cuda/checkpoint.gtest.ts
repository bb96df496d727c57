/**
 * GPU process trees through the CUDA driver's checkpoint API + CRIU, driven by the stasis CLI.
 * Runs on a GPU machine through the harness (gpu/run.sh gpu-tests); every measurement goes to
 * $STASIS_RESULTS_DIR/cuda-checkpoint.jsonl.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES } from "../testing/cli.js";
import { recordResult } from "../testing/results.js";
import { httpOk } from "../engines/http-client.js";
import { freePort } from "../proc/net.js";
import { gpuInventory } from "./gpus.js";
import { CudaDriver } from "./driver.js";
import { processTree } from "../proc/tree.js";

const { env, teardown } = tempHome();

/** GPU memory per host pid, through the same NVML path stasis uses. */
async function gpuMemoryByPid() {
  const driver = await CudaDriver.start();
  try {
    return await driver.gpuMemoryByPid();
  } finally {
    driver.close();
  }
}
after(() => teardown(2));

const inventory = await gpuInventory();
const skip = inventory ? false : "no NVIDIA GPU here";

interface Phase {
  name: string;
  durationMs: number;
  bytes?: number;
  gbps?: number;
}
const summary = (phases: Phase[]) =>
  phases.map((p) => ({
    name: p.name,
    ms: Math.round(p.durationMs),
    bytes: p.bytes,
    gbps: p.gbps && Number(p.gbps.toFixed(2)),
  }));

async function captureTorch(name: string, args: string[], extra: string[] = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cap = await stasis(
    [
      "capture",
      name,
      "--json",
      "--ready-url",
      `${base}/health`,
      "--ready-timeout",
      "300",
      "--canary-url",
      `${base}/checksum`,
      ...extra,
      "--",
      "python3",
      join(EXAMPLES, "gpu_torch_server.py"),
      "--port",
      String(port),
      ...args,
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);
  return { cap, base };
}

/** Captures and restores a torch process holding 4 GiB; `serverEnv` (K=V...) is given to the server. */
async function torch4g(name: string, label: string, serverEnv: string[] = []) {
  const { cap, base } = await captureTorch(
    name,
    ["--gib", "4"],
    serverEnv.flatMap((kv) => ["--env", kv]),
  );
  const m = cap.json.manifest;
  assert.equal(m.tree.cudaProcesses, 1);
  assert.ok(m.gpu.totalBytes >= 4 * 2 ** 30, `GPU bytes ${m.gpu.totalBytes}`);
  const names = cap.json.phases.map((p: Phase) => p.name);
  for (const n of ["cuda-lock", "cuda-checkpoint", "criu-dump"]) assert.ok(names.includes(n), `capture phase ${n}`);
  // Wall time from the end of the canary to the end of the last phase (some phases overlap: the digests).
  const after = cap.json.phases.filter(
    (p: Phase) => !["preflight", "launch", "ready", "warmup", "canary"].includes(p.name),
  );
  const afterReady =
    Math.max(...after.map((p: Phase & { endMs: number }) => p.endMs)) -
    Math.min(...after.map((p: Phase & { startMs: number }) => p.startMs));

  const res = await stasis(["restore", name, "--json"], env);
  assert.equal(res.code, 0, res.output);
  const rnames = res.json.phases.map((p: Phase) => p.name);
  for (const n of ["criu-restore", "cuda-restore", "cuda-unlock", "canary"])
    assert.ok(rnames.includes(n), `restore phase ${n}`);
  const again = (await httpOk(`${base}/checksum`)).body;
  assert.equal(again, m.engine.canary.text, "checksum after restore equals the one before capture");
  const mem = await gpuMemoryByPid();
  const tree = await processTree(res.json.instance.pid);
  const held = tree.reduce((a, p) => a + (mem.get(p.pid)?.bytes ?? 0), 0);
  assert.ok(held >= 4 * 2 ** 30, `restored tree holds ${held} bytes of GPU memory`);
  recordResult("cuda-checkpoint.jsonl", {
    test: label,
    ...(serverEnv.length > 0 ? { serverEnv } : {}),
    gpuBytes: m.gpu.totalBytes,
    imageBytes: m.files.reduce((a: number, f: { size: number }) => a + f.size, 0),
    captureAfterReadyMs: Math.round(afterReady),
    capturePhases: summary(cap.json.phases),
    restoreReadyMs: Math.round(res.json.readyMs),
    restorePhases: summary(res.json.phases),
  });
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
}

test("a torch process holding 4 GiB on the GPU: capture and restore, checksums bit-identical", { skip }, () =>
  torch4g("torch4g", "torch-4GiB"),
);

// CUDA_TEST_SERVER_ENV="K=V ...": the same again, the server started with that environment, recorded beside the
// plain one (e.g. GLIBC_TUNABLES=glibc.malloc.hugetlb=1: does the driver's checkpoint fill huge pages faster?).
const serverEnv = (process.env.CUDA_TEST_SERVER_ENV ?? "").split(/\s+/).filter(Boolean);
test(
  `the 4 GiB torch process again, its server started with ${serverEnv.join(" ") || "(CUDA_TEST_SERVER_ENV unset)"}`,
  { skip: skip || (serverEnv.length === 0 && "CUDA_TEST_SERVER_ENV is not set") },
  () => torch4g("torch4g-env", "torch-4GiB-env", serverEnv),
);

test("a two-process tree where both processes hold CUDA contexts", { skip }, async () => {
  const { cap, base } = await captureTorch("torch-two", ["--gib", "1", "--worker-gib", "1"]);
  assert.equal(cap.json.manifest.tree.cudaProcesses, 2);
  const res = await stasis(["restore", "torch-two", "--json"], env);
  assert.equal(res.code, 0, res.output);
  const body = (await httpOk(`${base}/checksum`)).body;
  assert.ok(JSON.parse(body).worker, "the worker answers");
  assert.equal(body, cap.json.manifest.engine.canary.text);
  recordResult("cuda-checkpoint.jsonl", {
    test: "two-cuda-processes",
    capturePhases: summary(cap.json.phases),
    restorePhases: summary(res.json.phases),
  });
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});

test("a restore without enough free GPU memory is refused up front, and nothing is left stuck", { skip }, async () => {
  const free = (inventory!.gpus[0]!.memoryMiB - inventory!.gpus[0]!.memoryUsedMiB) / 1024;
  // Take all but ~2 GiB of GPU 0, so the 4 GiB snapshot cannot fit.
  const hog = spawn(
    "python3",
    [
      "-c",
      `import torch,time; x=torch.empty(int(${Math.max(1, free - 2)}*2**30), dtype=torch.uint8, device="cuda:0"); print("held", flush=True); time.sleep(600)`,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      hog.stdout.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
      hog.on("exit", (c) => reject(new Error(`hog exited ${c}`)));
    });
    const res = await stasis(["restore", "torch4g"], env);
    assert.equal(res.code, 5, res.output);
    assert.match(res.stderr, /E_GPU_MEMORY: GPU 0 .* free; restoring needs/);
    assert.match(res.stderr, /hint: /);
    assert.deepEqual((await stasis(["ps", "--json"], env)).json.instances, []);
  } finally {
    hog.kill("SIGKILL");
    await new Promise((r) => hog.once("exit", r));
  }
  const ok = await stasis(["restore", "torch4g", "--json"], env);
  assert.equal(ok.code, 0, ok.output);
  assert.equal((await stasis(["stop", ok.json.instance.id], env)).code, 0);
});

test(
  "restore onto the other GPU of a two-GPU machine",
  { skip: skip || ((inventory?.gpus.length ?? 0) < 2 ? "needs two GPUs" : false) },
  async () => {
    const { cap, base } = await captureTorch("torch-move", ["--gib", "4"]);
    const from = cap.json.manifest.fingerprint.gpu.used[0];
    const target = inventory!.gpus.find((g) => g.uuid !== from.uuid)!;
    const res = await stasis(["restore", "torch-move", "--json", "--gpu", String(target.index)], env);
    assert.equal(res.code, 0, res.output);
    assert.equal((await httpOk(`${base}/checksum`)).body, cap.json.manifest.engine.canary.text);
    const mem = await gpuMemoryByPid();
    const tree = await processTree(res.json.instance.pid);
    const uuids = new Set(tree.flatMap((p) => mem.get(p.pid)?.uuids ?? []));
    assert.deepEqual([...uuids], [target.uuid], "the restored process runs on the other GPU");
    recordResult("cuda-checkpoint.jsonl", {
      test: "restore-onto-other-gpu",
      from: from.uuid,
      to: target.uuid,
      restorePhases: summary(res.json.phases),
    });
    assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
  },
);
