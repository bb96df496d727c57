#!/usr/bin/env node
// Where a CUDA process's snapshot image comes from: its memory (by mapping) before and after the CUDA driver
// checkpoints it, the mappings the checkpoint adds (the GPU state copied to the host), then restore + unlock.
//   node bench/memory-probe.mjs PID      (after `npm run build`, or on the GPU machine through gpu/run.sh)
import { existsSync, readFileSync } from "node:fs";

// The built CLI: this checkout's dist/, or the GPU harness's unpacked copy (gpu/run.sh).
const dist = [new URL("../dist/", import.meta.url).pathname, "/opt/stasis/app/dist/"].find((d) =>
  existsSync(d + "cuda/driver.js"),
);
if (!dist) throw new Error("no built stasis found: run `npm run build` first");
const { CudaDriver } = await import(dist + "cuda/driver.js");
const { cudaProcesses, checkpointAll, restoreAll } = await import(dist + "cuda/tree.js");
const { Events } = await import(dist + "events.js");

const pid = Number(process.argv[2]);
const anonVmas = () => {
  const out = new Map();
  let cur;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { range: `${head[1]}-${head[2]}`, name: head[3] || "[anon]", dirty: 0 };
      out.set(cur.range, cur);
    } else if (cur && line.startsWith("Private_Dirty:")) cur.dirty = Number(line.split(/\s+/)[1]) * 1024;
  }
  return out;
};
const show = (title, vmas, top = 12) => {
  const list = [...vmas.values()].sort((a, b) => b.dirty - a.dirty);
  const total = list.reduce((a, v) => a + v.dirty, 0);
  console.log(`${title}: private dirty ${(total / 1e6).toFixed(0)} MB in ${list.length} mappings; largest:`);
  for (const v of list.slice(0, top))
    if (v.dirty > 1e6) console.log(`  ${(v.dirty / 1e6).toFixed(1).padStart(8)} MB  ${v.range}  ${v.name}`);
  return total;
};
const driver = await CudaDriver.start();
try {
  const procs = await cudaProcesses(driver, [pid]);
  if (procs.length === 0) throw new Error(`process ${pid} holds no CUDA context`);
  console.log(`GPU memory of ${pid}: ${(procs[0].gpuBytes / 1e6).toFixed(0)} MB`);
  const before = anonVmas();
  const b = show("before the CUDA checkpoint", before);
  const events = new Events();
  await checkpointAll(driver, procs, events);
  const after = anonVmas();
  const a = show("after the CUDA checkpoint", after);
  const added = new Map([...after].filter(([k, v]) => !before.has(k) || v.dirty > before.get(k).dirty + 1e6));
  show(`mappings new or grown by the checkpoint (+${((a - b) / 1e6).toFixed(0)} MB)`, added, 8);
  await restoreAll(driver, procs, events);
  console.log(`after restore: private dirty ${(show("after restore", anonVmas(), 0) / 1e6).toFixed(0)} MB`);
} finally {
  await driver.close();
}
