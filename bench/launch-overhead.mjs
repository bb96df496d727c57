#!/usr/bin/env node
// What starting a server under the io_uring filter costs (src/launch/io-uring-off.ts: python3 installs a seccomp
// filter, then execs the command): time from launch() to the exit of a command that does nothing, with the filter
// and without (STASIS_IO_URING_FILTER=0), alternating, N rounds each. Prints a table and writes JSON.
//   node bench/launch-overhead.mjs [ROUNDS] [OUT.json]      (after `npm run build`)
import { writeFileSync } from "node:fs";
import { cpus, hostname, release } from "node:os";

const { launch } = await import(new URL("../dist/launch/launch.js", import.meta.url).pathname);
const rounds = Number(process.argv[2] ?? 30);
const out = process.argv[3];

async function once(filtered) {
  const t = performance.now();
  const s = await launch({
    argv: ["true"],
    cwd: "/",
    env: {},
    ioUringFilter: filtered,
    stdout: "/dev/null",
    stderr: "/dev/null",
  });
  await s.exited;
  return performance.now() - t;
}

const times = { filtered: [], direct: [] };
for (let i = 0; i < rounds; i++) {
  times.filtered.push(await once(true));
  times.direct.push(await once(false));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = Object.entries(times).map(([k, xs]) => ({
  case: k,
  medianMs: +median(xs).toFixed(1),
  minMs: +Math.min(...xs).toFixed(1),
  maxMs: +Math.max(...xs).toFixed(1),
}));
const machine = `${hostname()}: ${cpus().length} x ${cpus()[0]?.model}, kernel ${release()}`;
console.log(`${new Date().toISOString()} ${machine}, ${rounds} rounds each, alternating`);
console.log("| case | median | min | max |\n| --- | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.case} | ${r.medianMs} ms | ${r.minMs} ms | ${r.maxMs} ms |`);
if (out)
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, rounds, rows, times }, null, 2) + "\n");
