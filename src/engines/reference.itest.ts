/**
 * The whole pipeline on the CPU with the reference engine (a real two-process model server speaking vLLM's
 * control API): capture dumps the weights, sleeps at level 2 and dumps the tree; restore wakes the weights,
 * refills them from the dump, wakes the KV cache, resets the prefix cache, and the greedy canary must match.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome, REPO } from "../testing/cli.js";
import { httpOk } from "./http-client.js";
import { freePort } from "../proc/net.js";

const python = join(REPO, ".venv", "bin", "python");
const pyEnv = { PYTHONPATH: join(REPO, "python") };
const { home, env, teardown } = tempHome();
const modelDir = mkdtempSync(join(tmpdir(), "stasis-ref-tiny-"));
before(() => {
  execFileSync(
    python,
    ["-m", "stasis_engine.reference", "make-model", "--config", "tiny", "--out", modelDir, "--force"],
    {
      env: { ...process.env, ...pyEnv },
      stdio: "ignore",
    },
  );
});
after(() => teardown(5, modelDir));

async function captureReference(name: string) {
  const port = await freePort();
  const cap = await stasis(
    [
      "capture",
      name,
      "--json",
      "--engine",
      "vllm",
      "--ready-url",
      `http://127.0.0.1:${port}/health`,
      "--ready-timeout",
      "300",
      "--warmup",
      "2",
      "--env",
      `PYTHONPATH=${pyEnv.PYTHONPATH}`,
      "--",
      python,
      "-m",
      "stasis_engine.reference",
      "serve",
      "--model-dir",
      modelDir,
      "--port",
      String(port),
      "--device",
      "cpu",
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);
  return { cap, base: `http://127.0.0.1:${port}` };
}

test("reference engine: weights dumped, slept at level 2, restored with wake + refill + canary", async () => {
  const { cap, base } = await captureReference("ref");
  const m = cap.json.manifest;
  assert.equal(m.engine.state.sleepLevel, 2);
  assert.equal(m.tree.processes, 2, "front end + engine");
  const names = cap.json.phases.map((p: { name: string }) => p.name);
  for (const n of ["weights-dump", "sleep", "criu-dump"]) assert.ok(names.includes(n), `capture phase ${n}`);
  assert.ok(
    m.files.some((f: { role: string; path: string }) => f.role === "weights" && f.path === "weights/rank0.stasisw"),
  );

  const res = await stasis(["restore", "ref", "--json"], env);
  assert.equal(res.code, 0, res.output);
  const phases = res.json.phases.map((p: { name: string }) => p.name);
  const order = ["criu-restore", "wake-weights", "refill-weights", "wake-kv-cache", "reset-prefix-cache", "canary"];
  for (const n of order) assert.ok(phases.includes(n), `restore phase ${n}`);
  assert.deepEqual(
    order.map((n) => phases.indexOf(n)),
    [...order.map((n) => phases.indexOf(n))].sort((a, b) => a - b),
    "in this order",
  );
  const refill = res.json.phases.find((p: { name: string }) => p.name === "refill-weights");
  assert.ok(refill.bytes > 0, "the refill reports the bytes it moved");
  const answer = JSON.parse(
    (
      await httpOk(`${base}/v1/completions`, {
        body: JSON.stringify({ prompt: "Hello", max_tokens: 8, temperature: 0 }),
      })
    ).body,
  );
  assert.equal(answer.choices[0].text.length > 0, true);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});

test("a second snapshot of the same model reuses the weights dump (a hard link, no second dump)", async () => {
  const { cap } = await captureReference("ref-again");
  const names = cap.json.phases.map((p: { name: string }) => p.name);
  assert.ok(!names.includes("weights-dump"), "no second dump");
  const a = statSync(join(home, "snapshots", "ref", "weights", "rank0.stasisw"));
  const b = statSync(join(home, "snapshots", "ref-again", "weights", "rank0.stasisw"));
  assert.equal(a.ino, b.ino);
  const res = await stasis(["restore", "ref-again", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});
