#!/usr/bin/env node
// Page-cache benchmark: `stasis prefetch` (each strategy) against `vmtouch -t`, `cat > /dev/null` and parallel
// `dd` (the best parallel read rate the disk gives), side by side in one run, on a multi-file set.
// Cold cases run right after `sync; echo 3 > /proc/sys/vm/drop_caches` (so: as root); hot cases with every
// file already in the page cache. GB/s = bytes of the set / wall seconds of the whole command (process start
// included); stasis's own time (its --json "ms") is recorded beside it. Cases run round-robin, --repeat times;
// the table shows the median and the best run.
//
//   node bench/pagecache.mjs                                   # 8 x 512 MiB in /var/tmp, 3 rounds
//   node bench/pagecache.mjs --size-mib 256 --repeat 1         # a quick look
//   node bench/pagecache.mjs --stasis "/opt/stasis/bin/stasis" --vmtouch ./vmtouch --label gpu-h100 --out $OUT
//
// Options: --dir DIR (default /var/tmp/stasis-pagecache-bench; must not be tmpfs), --files N (8),
// --size-mib N (512), --repeat N (3), --out DIR (bench/results), --label NAME (the host name),
// --stasis CMD (default: this node + dist/cli/main.js of this checkout), --vmtouch PATH (default: on the PATH;
// the case is skipped, with a note, if there is none), --strategies a,b (populate,read,fadvise; also
// populate-large: populate with --large-folios),
// --concurrency N,M (stasis's default only), --chunk-mib N,M (stasis's default only), --dd-streams N,M (files,
// 2 x files), --no-hot, --keep (keep the set).
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { randomFillSync } from "node:crypto";
import { availableParallelism, cpus, hostname, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TMPFS_MAGIC = 0x01021994;
const MiB = 1 << 20;
const DROP = "sync; echo 3 > /proc/sys/vm/drop_caches";

const { values: a } = parseArgs({
  options: {
    dir: { type: "string", default: "/var/tmp/stasis-pagecache-bench" },
    files: { type: "string", default: "8" },
    "size-mib": { type: "string", default: "512" },
    repeat: { type: "string", default: "3" },
    out: { type: "string", default: join(REPO, "bench", "results") },
    label: { type: "string", default: hostname() },
    stasis: { type: "string" },
    vmtouch: { type: "string" },
    strategies: { type: "string", default: "populate,read,fadvise" },
    concurrency: { type: "string" },
    "chunk-mib": { type: "string" },
    "dd-streams": { type: "string" },
    "no-hot": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const nFiles = int("files", a.files);
const sizeMiB = int("size-mib", a["size-mib"]);
const repeat = int("repeat", a.repeat);
const fileBytes = sizeMiB * MiB;
const totalBytes = nFiles * fileBytes;

function int(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) die(`--${name}: expected a positive integer, got "${v}"`);
  return n;
}
function die(msg) {
  console.error(`pagecache bench: ${msg}`);
  process.exit(2);
}
function sh(cmd) {
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8", maxBuffer: 64 * MiB });
  if (r.status !== 0)
    throw new Error(`\`${cmd}\` failed (${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  return r.stdout;
}
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${q(cmd)}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

// --- the machine -------------------------------------------------------------------------------------------
try {
  writeFileSync("/proc/sys/vm/drop_caches", "1\n");
} catch (err) {
  die(`cannot drop the page cache (${err.code}): run as root, cold cases need \`${DROP}\``);
}
mkdirSync(a.dir, { recursive: true });
if (statfsSync(a.dir).type === TMPFS_MAGIC)
  die(`${a.dir} is on tmpfs: it is always "in memory"; pick a folder on a disk with --dir`);
const stasisCmd = a.stasis ?? `${q(process.execPath)} ${q(join(REPO, "dist", "cli", "main.js"))}`;
if (!a.stasis && !existsSync(join(REPO, "dist", "cli", "main.js")))
  die("dist/cli/main.js is missing: run `npm run build`, or pass --stasis CMD");
const vmtouch = a.vmtouch ?? which("vmtouch");
if (a.vmtouch && !existsSync(a.vmtouch)) die(`--vmtouch ${a.vmtouch}: no such file`);

function blockDevice(dir) {
  // st_dev -> /sys/dev/block/MAJ:MIN (a partition's queue settings are its disk's).
  const dev = statSync(dir).dev;
  const id = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
  const base = `/sys/dev/block/${id}`;
  const queue = existsSync(`${base}/queue`) ? `${base}/queue` : `${base}/../queue`;
  const read = (f) => (existsSync(`${queue}/${f}`) ? readFileSync(`${queue}/${f}`, "utf8").trim() : undefined);
  let name = id;
  try {
    name = sh(`basename "$(readlink -f ${base})"`).trim();
  } catch {
    /* keep MAJ:MIN */
  }
  return {
    device: name,
    readAheadKb: Number(read("read_ahead_kb")),
    maxSectorsKb: Number(read("max_sectors_kb")),
    rotational: read("rotational") === "1",
    scheduler: read("scheduler"),
  };
}

const system = {
  date: new Date().toISOString(),
  host: hostname(),
  label: a.label,
  cores: availableParallelism(),
  cpu: cpus()[0]?.model ?? "unknown",
  memGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
  disk: blockDevice(a.dir),
  command: `node bench/pagecache.mjs ${process.argv.slice(2).join(" ")}`.trim(),
};

// --- the file set ------------------------------------------------------------------------------------------
const files = Array.from({ length: nFiles }, (_, i) => join(a.dir, `f${String(i).padStart(2, "0")}.bin`));
const need = files.filter((f) => !existsSync(f) || statSync(f).size !== fileBytes);
if (need.length > 0) {
  const free = statfsSync(a.dir).bavail * statfsSync(a.dir).bsize;
  if (free < need.length * fileBytes + 1024 * MiB)
    die(
      `${a.dir} has ${(free / 2 ** 30).toFixed(1)} GiB free; the set needs ${((need.length * fileBytes) / 2 ** 30).toFixed(1)} GiB more`,
    );
  console.error(`writing ${need.length} x ${sizeMiB} MiB of random data to ${a.dir} ...`);
  const block = Buffer.alloc(8 * MiB);
  for (const f of need) {
    const fd = openSync(f, "w");
    for (let at = 0; at < fileBytes; at += block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, fileBytes - at), at);
    }
    fsyncSync(fd);
    closeSync(fd);
  }
}
const fileList = files.map(q).join(" ");

// --- the cases ---------------------------------------------------------------------------------------------
const ddStreams = (a["dd-streams"] ?? `${nFiles},${nFiles * 2}`).split(",").map((s) => int("dd-streams", s));
function ddCommand(streams) {
  // `streams` parallel dd's, each over an equal slice of one file (files x slices = streams).
  const slices = Math.max(1, Math.round(streams / nFiles));
  const slice = Math.ceil(fileBytes / slices);
  const parts = files.flatMap((f) =>
    Array.from(
      { length: slices },
      (_, k) =>
        `dd if=${q(f)} of=/dev/null bs=8M iflag=skip_bytes,count_bytes skip=${k * slice} count=${slice} status=none &`,
    ),
  );
  return { streams: files.length * slices, cmd: `${parts.join(" ")} wait` };
}
const cases = [];
const addCase = (name, kind, cmd, extra = {}) => cases.push({ name, kind, cmd, runs: [], ...extra });
const concurrencies = a.concurrency ? a.concurrency.split(",").map((s) => int("concurrency", s)) : [undefined];
const chunks = a["chunk-mib"] ? a["chunk-mib"].split(",").map((s) => int("chunk-mib", s)) : [undefined];
const strategies = a.strategies.split(",");
for (const kind of a["no-hot"] ? ["cold"] : ["cold", "hot"]) {
  addCase("cat > /dev/null", kind, `cat ${fileList} > /dev/null`);
  for (const n of ddStreams) {
    const dd = ddCommand(n);
    addCase(`dd x${dd.streams} (parallel)`, kind, dd.cmd, { baseline: true });
  }
  if (vmtouch) addCase("vmtouch -t", kind, `${q(vmtouch)} -qt ${fileList}`, { vmtouch: true });
  for (const s of strategies) {
    for (const c of concurrencies) {
      for (const m of chunks) {
        // "populate-large": populate with --large-folios (the page cache in 2 MiB folios).
        const how = s === "populate-large" ? "--strategy populate --large-folios" : `--strategy ${s}`;
        const flags = `${how}${c ? ` --concurrency ${c}` : ""}${m ? ` --chunk-mib ${m}` : ""}`;
        addCase(`stasis prefetch ${flags}`, kind, `${stasisCmd} prefetch ${fileList} ${flags} --json`, {
          stasis: true,
        });
      }
    }
  }
  if (kind === "hot")
    addCase("stasis prefetch --skip-resident", kind, `${stasisCmd} prefetch ${fileList} --skip-resident --json`, {
      stasis: true,
    });
}

function residentFraction() {
  const r = JSON.parse(sh(`${stasisCmd} residency ${fileList} --json`));
  return r.total.residentBytes / totalBytes;
}
/** The set's disk's reads so far, from /proc/diskstats: [reads completed, bytes]. */
function diskReads() {
  const line = readFileSync("/proc/diskstats", "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[2] === system.disk.device);
  return line ? [Number(line[3]), Number(line[5]) * 512] : undefined;
}
function runCase(c) {
  if (c.kind === "cold") sh(DROP);
  else sh(`${stasisCmd} prefetch ${fileList} --skip-resident --json > /dev/null`);
  const before = diskReads();
  const t0 = performance.now();
  const out = sh(c.cmd);
  const ms = performance.now() - t0;
  const after = diskReads();
  const run = { ms, gbps: totalBytes / 1e9 / (ms / 1000), residentAfter: residentFraction() };
  // The disk's mean read (KiB) during the case: the request size the way of reading produced.
  if (before && after && after[0] > before[0]) run.meanReadKiB = (after[1] - before[1]) / (after[0] - before[0]) / 1024;
  if (c.stasis) {
    const j = JSON.parse(out);
    const stasisMs = j.durationMs ?? j.ms; // `ms` before stasis.prefetch/v1
    Object.assign(run, {
      stasisMs,
      threads: j.concurrency,
      bytesRead: j.bytesRead,
      bytesAlreadyResident: j.bytesAlreadyResident,
    });
  }
  c.runs.push(run);
  console.error(
    `  ${c.kind.padEnd(4)} ${c.name.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(6)} s ${run.gbps.toFixed(2).padStart(7)} GB/s  resident after ${(run.residentAfter * 100).toFixed(0)}%`,
  );
}

console.error(
  `${system.label}: ${system.cores} cores, kernel ${system.kernel}, ${system.disk.device} (read_ahead_kb ${system.disk.readAheadKb})`,
);
console.error(`set: ${nFiles} x ${sizeMiB} MiB in ${a.dir}; cold cases run after \`${DROP}\``);
for (let round = 1; round <= repeat; round++) {
  console.error(`round ${round}/${repeat}`);
  for (const c of cases) runCase(c);
}
if (!a.keep) for (const f of files) rmSync(f, { force: true });

// --- the results -------------------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const c of cases) {
  c.medianMs = median(c.runs.map((r) => r.ms));
  c.medianGbps = totalBytes / 1e9 / (c.medianMs / 1000);
  c.bestGbps = Math.max(...c.runs.map((r) => r.gbps));
  if (c.stasis) c.medianStasisMs = median(c.runs.map((r) => r.stasisMs));
  if (c.runs.every((r) => r.meanReadKiB !== undefined)) c.medianMeanReadKiB = median(c.runs.map((r) => r.meanReadKiB));
  c.minResidentAfter = Math.min(...c.runs.map((r) => r.residentAfter));
}
const summary = {};
for (const kind of ["cold", "hot"]) {
  const of = (f) => cases.filter((c) => c.kind === kind && f(c));
  if (of(() => true).length === 0) continue;
  const top = (cs) => cs.reduce((x, y) => (y.medianGbps > x.medianGbps ? y : x), cs[0]);
  const base = top(of((c) => c.baseline));
  const best = top(of((c) => c.stasis && !c.name.includes("skip-resident")));
  const vm = of((c) => c.vmtouch)[0];
  summary[kind] = {
    bestParallel: { case: base.name, gbps: base.medianGbps },
    stasis: { case: best.name, gbps: best.medianGbps },
    vsBestParallel: best.medianGbps / base.medianGbps,
    ...(vm ? { vmtouch: { gbps: vm.medianGbps }, vsVmtouch: best.medianGbps / vm.medianGbps } : {}),
  };
  for (const c of of(() => true)) {
    c.vsBestParallel = c.medianGbps / base.medianGbps;
    if (vm) c.vsVmtouch = c.medianGbps / vm.medianGbps;
  }
}
const result = {
  system,
  set: { dir: a.dir, files: nFiles, fileBytes, totalBytes },
  repeat,
  dropCaches: DROP,
  stasis: stasisCmd,
  vmtouch: vmtouch ?? null,
  cases,
  summary,
};

const f2 = (x) => (x === undefined ? "" : x.toFixed(2));
const rows = cases.map(
  (c) =>
    `| ${c.kind} | ${c.name} | ${f2(c.medianMs / 1000)} | ${f2(c.medianGbps)} | ${f2(c.bestGbps)} | ${c.medianStasisMs === undefined ? "" : f2(c.medianStasisMs / 1000)} | ${f2(c.vsBestParallel)}x | ${c.vsVmtouch === undefined ? "" : `${f2(c.vsVmtouch)}x`} | ${(c.minResidentAfter * 100).toFixed(0)}% | ${c.kind === "cold" && c.medianMeanReadKiB !== undefined ? c.medianMeanReadKiB.toFixed(0) : ""} |`,
);
const verdict = (kind) => {
  const s = summary[kind];
  if (!s) return [];
  return [
    `- ${kind}: best stasis (${s.stasis.case}) ${f2(s.stasis.gbps)} GB/s = **${f2(s.vsBestParallel)}x** the best parallel read (${s.bestParallel.case}, ${f2(s.bestParallel.gbps)} GB/s)` +
      (kind === "cold" ? ` (target >= 0.9x: ${s.vsBestParallel >= 0.9 ? "met" : "NOT met"})` : ""),
    s.vsVmtouch === undefined
      ? `- ${kind}: vmtouch not measured (none on this machine; pass --vmtouch PATH)`
      : `- ${kind}: **${f2(s.vsVmtouch)}x** vmtouch -t (${f2(s.vmtouch.gbps)} GB/s)${kind === "cold" ? ` (target >= 2x on the GPU machine: ${s.vsVmtouch >= 2 ? "met" : "not met here"})` : ""}`,
  ];
};
const table = [
  "| kind | case | median s | median GB/s | best GB/s | stasis's own s | vs best parallel | vs vmtouch | resident after | mean read KiB |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows,
].join("\n");
const md = [
  `# Page-cache benchmark: ${system.label}`,
  "",
  `- date: ${system.date}; host: ${system.host}; ${system.cores} cores (${system.cpu}), ${system.memGiB} GiB RAM; kernel ${system.kernel}; node ${system.node}`,
  `- disk: ${system.disk.device} (read_ahead_kb ${system.disk.readAheadKb}, max_sectors_kb ${system.disk.maxSectorsKb}, scheduler ${system.disk.scheduler})`,
  `- set: ${nFiles} files x ${sizeMiB} MiB = ${(totalBytes / 2 ** 30).toFixed(1)} GiB of random data in ${a.dir}`,
  `- command: \`${system.command}\``,
  `- cold: \`${DROP}\` before every cold run; hot: every file already in the page cache. ${repeat} round(s), cases round-robin.`,
  "- GB/s: set bytes / wall time of the whole command, process start included (stasis's own time beside it).",
  "",
  table,
  "",
  ...verdict("cold"),
  ...verdict("hot"),
  "",
].join("\n");
mkdirSync(a.out, { recursive: true });
const stem = join(a.out, `pagecache-${a.label}-${system.date.slice(0, 10)}`);
writeFileSync(`${stem}.json`, JSON.stringify(result, null, 2) + "\n");
writeFileSync(`${stem}.md`, md);
console.error(`wrote ${stem}.json and ${stem}.md`);
console.log(md);
