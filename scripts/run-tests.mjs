#!/usr/bin/env node
// Runs the compiled node:test files: `unit` (*.test.js), `integration` (*.itest.js, need root + CRIU) or
// `gpu` (*.gtest.js, need root + CRIU + an NVIDIA GPU; run through the GPU harness, gpu/run.sh).
// Node 20's --test takes no globs, so the files are listed here. Extra args filter by substring.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const [kind = "unit", ...filters] = process.argv.slice(2);
const suffix = { unit: ".test.js", integration: ".itest.js", gpu: ".gtest.js" }[kind];
if (!suffix) {
  console.error(`unknown test kind "${kind}": unit, integration or gpu`);
  process.exit(2);
}
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith(suffix) && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
})("dist");
if (files.length === 0) {
  console.error(`no ${kind} tests found under dist/ (did you run npm run build?)`);
  process.exit(1);
}
// Integration and GPU tests share CRIU, ports and the GPU: run them one file at a time.
const args = ["--test", "--test-reporter=spec", ...(kind === "unit" ? [] : ["--test-concurrency=1"]), ...files];
const r = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(r.status ?? 1);
