#!/usr/bin/env node
// What a run read into the page cache, by file: reads `stasis residency --json` output on stdin and prints the
// total, the largest resident files and the total per folder (three path components, or a Python package). Used after a
// restore from a cold page cache (gpu/suites/pipeline.sh COLD_GAPS=1) to see which files the restore read
// besides the snapshot's own.
// Usage: stasis residency --json DIR... | node bench/resident-top.mjs [N]
import { readFileSync } from "node:fs";

const top = Number(process.argv[2] ?? 30);
const doc = JSON.parse(readFileSync(0, "utf8"));
const seen = new Map();
for (const f of doc.files ?? []) if (f.residentBytes > 0) seen.set(f.path, f);
const files = [...seen.values()].sort((a, b) => b.residentBytes - a.residentBytes);
const mb = (n) => (n / 1e6).toFixed(1).padStart(9);
const total = files.reduce((s, f) => s + f.residentBytes, 0);
console.log(`resident: ${mb(total)} MB in ${files.length} files`);
const byDir = new Map();
for (const f of files) {
  // A Python package is one folder (site-packages/torch, site-packages/nvidia/cublas); anything else its first three.
  const parts = f.path.split("/");
  const site = parts.findIndex((p) => p === "site-packages" || p === "dist-packages");
  const key = parts.slice(0, site >= 0 ? site + (parts[site + 1] === "nvidia" ? 3 : 2) : 4).join("/");
  byDir.set(key, (byDir.get(key) ?? 0) + f.residentBytes);
}
console.log("by folder:");
for (const [dir, bytes] of [...byDir].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${mb(bytes)} MB  ${dir}`);
console.log(`largest ${top} (resident MB, file MB, path):`);
for (const f of files.slice(0, top)) console.log(`${mb(f.residentBytes)} ${mb(f.size)}  ${f.path}`);
