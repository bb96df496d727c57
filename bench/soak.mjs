#!/usr/bin/env node
// The soak: many restores of the bundled example servers, one after the other and several at once, with the client
// (`stasis restore`) killed with SIGKILL at random moments, then a check that nothing leaked: no process, instance
// folder, nftables table, file in /tmp or /dev/shm. Run as root after `npm run build`:
//   node bench/soak.mjs [--restores 200] [--concurrency 4] [--kill-rate 0.3] [--max-minutes 18] [--out DIR]
// Half the restores run one at a time, half in batches of --concurrency (snapshots drawn at random, so a batch may
// restore one snapshot twice: the second must be refused). It stops early at --max-minutes and says so.
// Writes DIR/soak.json and DIR/README.md (default bench/results/<date>-<host>/soak).
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus, hostname, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import { parseArgs } from "node:util";

const REPO = resolve(import.meta.dirname, "..");
const MAIN = join(REPO, "dist/cli/main.js");
const { values } = parseArgs({
  options: {
    restores: { type: "string", default: "200" },
    concurrency: { type: "string", default: "4" },
    "kill-rate": { type: "string", default: "0.3" },
    "max-minutes": { type: "string", default: "18" },
    out: { type: "string" },
  },
});
const total = Number(values.restores);
const width = Number(values.concurrency);
const killRate = Number(values["kill-rate"]);
const deadline = Date.now() + Number(values["max-minutes"]) * 60_000;
const date = new Date().toISOString().slice(0, 10);
const out = values.out ?? join(REPO, "bench/results", `${date}-devbox`, "soak");
const home = mkdtempSync(join(tmpdir(), "stasis-soak-"));
const env = { ...process.env, STASIS_HOME: home, STASIS_NO_DAEMON: "1" };
const started = Date.now();

const freePort = () =>
  new Promise((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const listing = (dir) => new Set(existsSync(dir) ? readdirSync(dir) : []);
const nftTables = () => {
  try {
    return new Set(execFileSync("nft", ["list", "tables"], { encoding: "utf8" }).split("\n").filter(Boolean));
  } catch {
    return new Set(["(nft not available)"]);
  }
};

/**
 * Runs the CLI. With `kill`, SIGKILLs it (if still running) `kill.ms` after it printed that phase `kill.after` ended
 * (its progress lines on stderr), or after it started where `kill.after` is "start".
 */
function cli(args, kill) {
  return new Promise((resolveRun) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    let killed = false;
    let phase = "";
    let timer;
    const fire = () => {
      killed = true;
      // The last phase the client finished: where the kill landed.
      phase = [...stderr.matchAll(/✓ (\S+)/g)].map((m) => m[1]).pop() ?? "start";
      child.kill("SIGKILL");
    };
    if (kill?.after === "start") timer = setTimeout(fire, kill.ms);
    else if (kill) {
      child.stderr.on("data", () => {
        if (timer === undefined && stderr.includes(`✓ ${kill.after}`)) timer = setTimeout(fire, kill.ms);
      });
    }
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolveRun({
        code,
        signal,
        killed: killed && signal === "SIGKILL",
        phase,
        json,
        stdout,
        stderr,
        ms: Date.now() - t0,
      });
    });
  });
}

/** Where a kill lands: during start-up (the first 500 ms), or up to 60 ms after one of these phases ended (so in the
 *  next: the claim, CRIU, the wait for readiness, the canary). */
const KILL_POINTS = ["start", "open", "preflight", "criu-restore", "ready"];
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** One restore: killed at a random moment, or awaited, its canary asked again and the instance stopped. */
async function oneRestore(snap) {
  return { at: new Date().toISOString(), ...(await restoreOnce(snap)) };
}

async function restoreOnce(snap) {
  const after = KILL_POINTS[Math.floor(Math.random() * KILL_POINTS.length)];
  const kill =
    Math.random() < killRate ? { after, ms: Math.floor(Math.random() * (after === "start" ? 500 : 60)) } : undefined;
  // Not --json: the phases' progress lines on stderr say where a kill landed.
  const r = await cli(["restore", snap.name], kill);
  if (r.killed) return { snapshot: snap.name, outcome: "killed", phase: `after ${r.phase}`, killAtMs: kill };
  const error = /stasis: error (E_[A-Z_]+): (.*)/.exec(r.stderr);
  if (r.code !== 0)
    return {
      snapshot: snap.name,
      outcome: "failed",
      code: error?.[1] ?? `exit ${r.code}`,
      message: error?.[2] ?? r.stderr.slice(-300),
    };
  const done = /as instance ([0-9a-f]+) .* in ([\d.]+ m?s)/.exec(r.stdout);
  let matched;
  try {
    const res = await fetch(snap.canaryUrl, { signal: AbortSignal.timeout(10_000) });
    matched = res.status === snap.canary.status && sha256(await res.text()) === snap.canary.sha256;
  } catch {
    matched = false;
  }
  if (done) await cli(["stop", done[1], "--grace", "1"]);
  return { snapshot: snap.name, outcome: matched ? "ok" : "canary-mismatch", ready: done?.[2], cliMs: r.ms };
}

async function capture(name, server, extra) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const r = await cli([
    "capture",
    name,
    "--json",
    "--warmup",
    "1",
    "--ready-url",
    `${base}/health`,
    "--canary-url",
    `${base}/answer?q=soak`,
    "--",
    "python3",
    join(REPO, "examples", server),
    "--port",
    String(port),
    "--startup-seconds",
    "0.5",
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`capture ${name} failed: ${r.stderr.slice(-2000)}`);
  return { name, canaryUrl: `${base}/answer?q=soak`, canary: r.json.manifest.engine.canary, port };
}

const before = { tmp: listing("/tmp"), shm: listing("/dev/shm"), nft: nftTables() };
const snaps = [
  await capture("slow-ghost", "slow_server.py", ["--ghost-file"]),
  await capture("slow-plain", "slow_server.py", ["--ballast-mb", "64"]),
  await capture("twoproc-a", "two_process_server.py", []),
  await capture("twoproc-b", "two_process_server.py", []),
];
const afterCapture = { tmp: listing("/tmp"), shm: listing("/dev/shm") };
const pick = () => snaps[Math.floor(Math.random() * snaps.length)];

/**
 * A kill that landed after the restore had finished (its record says serving) leaves a healthy instance: stopped here
 * and counted, never mistaken for a leak. Unfinished ones are left to the supervisors: what they miss is a leak.
 */
let servedBeforeKill = 0;
async function stopServing() {
  for (const i of (await cli(["ps", "--json"])).json?.instances ?? []) {
    if (i.status !== "serving") continue;
    servedBeforeKill++;
    await cli(["stop", i.id, "--grace", "1"]);
  }
}

const results = [];
let stoppedEarly = false;
for (let i = 0; i < Math.ceil(total / 2); i++) {
  if (Date.now() > deadline) {
    stoppedEarly = true;
    break;
  }
  results.push({ mode: "sequential", ...(await oneRestore(pick())) });
  if (results.at(-1).outcome === "killed") await stopServing();
}
while (!stoppedEarly && results.length < total) {
  if (Date.now() > deadline) {
    stoppedEarly = true;
    break;
  }
  const batch = Array.from({ length: Math.min(width, total - results.length) }, pick);
  const names = batch.map((s) => s.name);
  const rs = await Promise.all(batch.map(oneRestore));
  for (const r of rs)
    results.push({ mode: `${width} at a time`, twiceInBatch: names.filter((n) => n === r.snapshot).length > 1, ...r });
  if (rs.some((r) => r.outcome === "killed")) await stopServing();
}

// Leftovers: the supervisors of killed restores reap in the background (a `stasis stop` each): wait until no record is
// left, up to 60 s, and say how long that took; what is left then is a leak.
const settleStarted = Date.now();
let ps = await cli(["ps", "--all", "--json"]);
while ((ps.json?.instances ?? []).length > 0 && Date.now() - settleStarted < 60_000) {
  await sleep(1_000);
  ps = await cli(["ps", "--all", "--json"]);
}
const settleMs = Date.now() - settleStarted;
const strays = [];
for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)) {
  let cmd;
  let state;
  try {
    cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ");
    state = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.[0] ?? "";
  } catch {
    continue;
  }
  const ours =
    cmd.includes(home) || snaps.some((s) => cmd.includes(`--port ${s.port} `) || cmd.endsWith(`--port ${s.port} `));
  if (ours && state !== "Z") strays.push(`${p}: ${cmd.slice(0, 200)}`);
}
const instanceDirs = [...listing(join(home, "instances"))];
const withRecord = instanceDirs.filter((d) => existsSync(join(home, "instances", d, "instance.json")));
const leakedRecords = withRecord.map((d) => ({
  id: d,
  record: JSON.parse(readFileSync(join(home, "instances", d, "instance.json"), "utf8")),
}));
const now = { tmp: listing("/tmp"), shm: listing("/dev/shm"), nft: nftTables() };
const added = (a, b) => [...b].filter((x) => !a.has(x));
// The machine is shared: files others made meanwhile show up too. Ours are those a restore of these snapshots puts in
// place or CRIU makes (by path, from the manifests and the images), and placeFiles' temporary names.
const { criuTempFiles } = await import(join(REPO, "dist/criu/temp-files.js"));
const ownPaths = new Set();
for (const s of snaps) {
  const m = JSON.parse(readFileSync(join(home, "snapshots", s.name, "manifest.json"), "utf8"));
  for (const f of [...m.linkRemaps, ...m.shmFiles]) ownPaths.add(f.original);
  for (const f of await criuTempFiles(join(home, "snapshots", s.name, "images"))) ownPaths.add(f);
}
const ours = (dir) => (n) =>
  ownPaths.has(join(dir, n)) || /^\.stasis-(\d+-)?[0-9a-f]{8}$|^\.stasis-lock-|\.cr\.[0-9a-f]+\.ghost$/.test(n);
const leaks = {
  processes: strays,
  records: leakedRecords,
  failedRunFolders: instanceDirs.filter((d) => !withRecord.includes(d)),
  nftTables: added(before.nft, now.nft),
  tmp: added(afterCapture.tmp, now.tmp).filter(ours("/tmp")),
  devShm: added(afterCapture.shm, now.shm).filter(ours("/dev/shm")),
  // Others' files (the machine is shared), counted only.
  tmpOther: added(afterCapture.tmp, now.tmp).filter((n) => !ours("/tmp")(n)).length,
  devShmOther: added(afterCapture.shm, now.shm).filter((n) => !ours("/dev/shm")(n)).length,
  paths: [...ownPaths].sort(),
  instancesListed: (ps.json?.instances ?? []).map((i) => ({
    id: i.id,
    snapshot: i.snapshot,
    status: i.status,
    state: i.state,
    pid: i.pid,
    owner: i.owner,
  })),
  settleMs,
};

const count = (f) => results.filter(f).length;
const attempted = count((r) => r.outcome !== "killed");
const matched = count((r) => r.outcome === "ok");
const byCode = {};
for (const r of results.filter((x) => x.outcome === "failed" || x.outcome === "canary-mismatch")) {
  const key =
    r.outcome === "failed"
      ? r.code + (r.twiceInBatch && r.code === "E_ADDRESS_IN_USE" ? " (its snapshot twice in the batch: expected)" : "")
      : "canary mismatch";
  byCode[key] = (byCode[key] ?? 0) + 1;
}
const expectedRefusals = count((r) => r.outcome === "failed" && r.code === "E_ADDRESS_IN_USE" && r.twiceInBatch);
const killedAt = {};
for (const r of results.filter((x) => x.outcome === "killed")) killedAt[r.phase] = (killedAt[r.phase] ?? 0) + 1;
const summary = {
  date: new Date().toISOString(),
  machine: { host: hostname(), cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release() },
  command: `node bench/soak.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  minutes: +((Date.now() - started) / 60_000).toFixed(1),
  stoppedEarly,
  restores: results.length,
  killed: count((r) => r.outcome === "killed"),
  killedAt,
  killedAfterItServed: servedBeforeKill,
  attempted,
  canaryMatched: matched,
  expectedRefusals,
  successRate: +(matched / Math.max(1, attempted - expectedRefusals)).toFixed(4),
  failuresByCode: byCode,
  leaks,
  clean:
    strays.length === 0 &&
    withRecord.length === 0 &&
    leaks.nftTables.length === 0 &&
    leaks.tmp.length === 0 &&
    leaks.devShm.length === 0,
};
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "soak.json"), JSON.stringify({ summary, results }, null, 2) + "\n");
console.log(JSON.stringify(summary, null, 2));
await cli(["stop", "--all", "--grace", "1"]);
rmSync(home, { recursive: true, force: true });
process.exit(summary.clean ? 0 : 1);
