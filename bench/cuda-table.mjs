#!/usr/bin/env node
// Turns the GPU tests' measurements ($STASIS_RESULTS_DIR/cuda-checkpoint.jsonl, written by
// src/cuda/checkpoint.gtest.ts through gpu/run.sh cuda) into a markdown table of each capture's and restore's
// phases: lock, checkpoint, dump, restore, cuda restore, unlock, with GB/s where bytes move.
//   node bench/cuda-table.mjs results.jsonl [more.jsonl...] > table.md
import { readFileSync } from "node:fs";

const rows = process.argv.slice(2).flatMap((f) =>
  readFileSync(f, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => ({ file: f, ...JSON.parse(l) })),
);
const ms = (x) => (x === undefined ? "" : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x} ms`);
const phase = (list, name) => (list ?? []).find((p) => p.name === name);
const cell = (list, name) => {
  const p = phase(list, name);
  return p ? `${ms(p.ms)}${p.gbps ? ` (${p.gbps} GB/s)` : ""}` : "";
};
// The knobs a row ran with: CRIU's dump writers (a patch tried on 2026-11-27, since removed), the server's environment.
const label = (r) => {
  const knobs = [...(r.dumpWriters > 1 ? [`${r.dumpWriters} dump writers`] : []), ...(r.serverEnv ?? [])];
  return knobs.length ? ` (${knobs.join(", ")})` : "";
};
const out = [
  "| test | recorded | GPU bytes | image bytes | cuda-lock | cuda-checkpoint | criu-dump | capture after ready | criu-restore | cuda-restore | cuda-unlock | restore to canary |",
  "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- | --- | --- |",
];
for (const r of rows) {
  out.push(
    `| ${r.test}${label(r)} | ${r.at} | ${r.gpuBytes ?? ""} | ${r.imageBytes ?? ""} | ${cell(r.capturePhases, "cuda-lock")} | ${cell(r.capturePhases, "cuda-checkpoint")} | ${cell(r.capturePhases, "criu-dump")} | ${ms(r.captureAfterReadyMs)} | ${cell(r.restorePhases, "criu-restore")} | ${cell(r.restorePhases, "cuda-restore")} | ${cell(r.restorePhases, "cuda-unlock")} | ${ms(r.restoreReadyMs)} |`,
  );
}
console.log(out.join("\n"));
