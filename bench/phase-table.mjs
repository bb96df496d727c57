#!/usr/bin/env node
// One row per `stasis restore --json` output: time to ready and the phases that matter, side by side.
//   node bench/phase-table.mjs label=file.json ...
import { readFileSync } from "node:fs";

const cols = [
  "open",
  "criu-restore",
  "prefetch+verify",
  "cuda-restore",
  "wake-weights",
  "refill-weights",
  "wake-kv-cache",
  "canary",
];
const rows = [["variant", "ready", ...cols]];
for (const arg of process.argv.slice(2)) {
  const [label, file] = arg.includes("=") ? arg.split("=") : [arg, arg];
  let r;
  try {
    r = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    rows.push([label, `unreadable: ${e.message.slice(0, 40)}`]);
    continue;
  }
  if (!r.phases) {
    rows.push([label, `failed: ${(r.error?.message ?? "?").slice(0, 80)}`]);
    continue;
  }
  const ms = (n) => {
    const p = r.phases.find((x) => x.name === n);
    return p ? `${Math.round(p.durationMs ?? p.ms)}` : "-"; // `ms` in outputs of stasis before stasis.restore/v1
  };
  rows.push([label, `${Math.round(r.readyMs)}`, ...cols.map(ms)]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
for (const r of rows)
  console.log(r.map((c, i) => (c ?? "").padStart(i ? widths[i] : 0).padEnd(i ? 0 : widths[0])).join("  "));
console.log("(ms; ready is the CLI's own clock, without Node's start-up)");
