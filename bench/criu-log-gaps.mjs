#!/usr/bin/env node
// Where a CRIU run spent its time, from its -v4 log (every line starts with "(SS.micros)"): the total, then the
// largest gaps between consecutive lines with the line that ended each gap (the step that took the time).
//   node bench/criu-log-gaps.mjs criu-restore.log [top=12]
import { readFileSync } from "node:fs";

const [path, topArg] = process.argv.slice(2);
if (!path) {
  console.error("usage: criu-log-gaps.mjs LOG [TOP]");
  process.exit(2);
}
const lines = readFileSync(path, "utf8").split("\n");
const stamped = [];
for (const line of lines) {
  const m = /^\((\d+)\.(\d+)\)\s*(.*)$/.exec(line);
  if (m) stamped.push({ t: Number(m[1]) + Number(m[2]) / 1e6, text: m[3] });
}
if (stamped.length < 2) {
  console.log(`${path}: no timestamped lines (CRIU logs them at -v4)`);
  process.exit(0);
}
const gaps = stamped
  .slice(1)
  .map((l, i) => ({ ms: (l.t - stamped[i].t) * 1000, at: stamped[i].t, before: stamped[i].text, line: l.text }));
gaps.sort((a, b) => b.ms - a.ms);
console.log(`${path}: ${stamped.length} lines over ${((stamped.at(-1).t - stamped[0].t) * 1000).toFixed(1)} ms`);
for (const g of gaps.slice(0, Number(topArg ?? 12))) {
  console.log(
    `${g.ms.toFixed(1).padStart(8)} ms at ${g.at.toFixed(3)}s  after: ${g.before.slice(0, 90)}\n${" ".repeat(22)}until: ${g.line.slice(0, 90)}`,
  );
}
