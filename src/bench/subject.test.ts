import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { benchSubject } from "./subject.js";
import type { Snapshot } from "../store/store.js";

function snapshot(argv: string[], cwd: string, canaryBody: string): Snapshot {
  return {
    name: "m",
    dir: "/nonexistent",
    manifest: {
      command: { argv, cwd, env: {} },
      engine: {
        kind: "vllm",
        canary: { method: "POST", path: "/v1/completions", body: canaryBody, status: 200, sha256: "0".repeat(64) },
        state: {},
      },
      fingerprint: { engine: { name: "vllm", version: "0.26.0" } },
      files: [
        { path: "images/pages-1.img", size: 4_000, role: "image" },
        { path: "weights/rank0.stasisw", size: 6_000, role: "weights" },
      ],
      gpu: { processes: [], totalBytes: 1_700 },
    },
  } as unknown as Snapshot;
}

test("a benchmark's subject is read from the snapshot and the model folder its command names", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stasis-subject-"));
  try {
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        hidden_size: 3072,
        num_hidden_layers: 28,
        rope_theta: 5e5,
      }),
    );
    const s = await benchSubject(
      snapshot(
        ["vllm", "serve", "--port", "8000", "model"],
        dir.replace(/\/[^/]+$/, ""),
        '{"model":"/opt/model","prompt":"x"}',
      ),
    );
    // argv "model" is resolved against cwd; "--port" and "8000" name no folder with a config.json.
    assert.deepEqual(s.engine, { adapter: "vllm", name: "vllm", version: "0.26.0" });
    assert.equal(s.model.id, "/opt/model");
    assert.equal(s.model.weightsBytes, 6_000);
    assert.equal(s.model.imageBytes, 4_000);
    assert.equal(s.model.gpuStateBytes, 1_700);
    assert.equal(s.model.shape, undefined); // cwd/model does not exist
    const named = await benchSubject(snapshot(["vllm", "serve", dir], "/", "not json"));
    assert.deepEqual(named.model.shape, {
      architectures: ["LlamaForCausalLM"],
      hidden_size: 3072,
      num_hidden_layers: 28,
    });
    assert.equal(named.model.id, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
