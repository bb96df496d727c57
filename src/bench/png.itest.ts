/**
 * The pictures' renderer is a prebuilt binary (resvg, from npm): it must draw on any x86-64 CPU, not only on the
 * AVX-512 machines the tests usually run on. `stasis bench --from` under qemu-user with older CPU models (qemu's
 * TCG has no AVX-512) must write the same PNG, byte for byte, as on this CPU. qemu-user comes with
 * `./setup.sh test` (docs/install.md).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../testing/cli.js";

const work = mkdtempSync(join(tmpdir(), "stasis-png-cpus-"));
after(() => rmSync(work, { recursive: true, force: true }));
const results = join(REPO, "bench/results/2026-11-27-h100/pipeline-3b-43-judged/bench-servepin/results.json");

function draw(out: string, cpu?: string): Buffer {
  const argv = [process.execPath, join(REPO, "dist/cli/main.js"), "bench", "--from", results, "--out", out];
  const r = spawnSync(cpu ? "qemu-x86_64" : argv[0]!, cpu ? ["-cpu", cpu, ...argv] : argv.slice(1), {
    encoding: "utf8",
    timeout: 300_000,
    killSignal: "SIGKILL",
  });
  assert.equal(r.status, 0, `${cpu ?? "here"}: ${r.error?.message ?? ""} ${r.stderr.slice(-2000)}`);
  return readFileSync(join(out, "waterfall.png"));
}

test("the bench's PNG is drawn the same on an AVX2-only (EPYC) and an SSE4.2-only (Nehalem) CPU as here", () => {
  assert.equal(spawnSync("qemu-x86_64", ["--version"]).status, 0, "qemu-x86_64 not found: apt-get install qemu-user");
  const here = draw(join(work, "here"));
  for (const cpu of ["EPYC", "Nehalem"]) assert.ok(draw(join(work, cpu), cpu).equals(here), `${cpu}: other pixels`);
});
