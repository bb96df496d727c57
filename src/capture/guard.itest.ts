/**
 * A capture takes only the server it launched, and what it leaves has an owner: end to end through the CLI, with
 * real CRIU, real servers and a real foreign process on the port. Each test is named after the fault it pins.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome, EXAMPLES, MAIN } from "../testing/cli.js";
import { freePort } from "../proc/net.js";
import { httpOk } from "../engines/http-client.js";
import { isRunning } from "../proc/tree.js";
import { criuRunId, lockTableName, lockTables } from "../criu/network-lock.js";

const { home, env, teardown } = tempHome();
const started: ChildProcess[] = [];
const strays: number[] = [];
after(async () => {
  for (const c of started) c.kill("SIGKILL");
  for (const pid of strays) killQuietly(pid);
  await teardown(1);
});

const SLOW = join(EXAMPLES, "slow_server.py");
const storeEntries = () => (existsSync(join(home, "snapshots")) ? readdirSync(join(home, "snapshots")).sort() : []);
const server = (port: number, ...extra: string[]) => [
  "--",
  "python3",
  SLOW,
  "--port",
  String(port),
  "--startup-seconds",
  "0",
  ...extra,
];
const urls = (port: number, canary = "/answer?q=x") => [
  "--ready-url",
  `http://127.0.0.1:${port}/health`,
  "--canary-url",
  `http://127.0.0.1:${port}${canary}`,
];

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function answering(port: number): Promise<boolean> {
  return httpOk(`http://127.0.0.1:${port}/health`, { timeoutMs: 1000 }).then(
    () => true,
    () => false,
  );
}

/** The CLI as a child whose pid the test signals. */
function capturing(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const stdio: ["ignore", "pipe", "pipe"] = ["ignore", "pipe", "pipe"];
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio });
  started.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = once(child, "close").then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, done };
}

/** The newest instance folder's CRIU dump log, once it exists and has `text`. */
function dumpLogWith(text: RegExp, before: Set<string>): string | undefined {
  const dir = join(home, "instances");
  for (const id of existsSync(dir) ? readdirSync(dir) : []) {
    if (before.has(id)) continue;
    const log = join(dir, id, "criu-dump.log");
    if (existsSync(log) && text.test(readFileSync(log, "utf8"))) return log;
  }
  return undefined;
}

const instanceIds = () => new Set(existsSync(join(home, "instances")) ? readdirSync(join(home, "instances")) : []);

/** The PIDs of processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test("a foreign process on the ready URL's port: the capture refuses before launching, naming it", async () => {
  const port = await freePort();
  const foreign = spawn("python3", [SLOW, "--port", String(port), "--startup-seconds", "0"], { stdio: "ignore" });
  started.push(foreign);
  await until("the foreign server", () => answering(port));
  const args = ["capture", "foreign-port", "--json", ...urls(port), ...server(port, "--ballast-mb", "1")];
  const r = await stasis(args, env);
  assert.equal(r.code, 4, r.output);
  assert.equal(r.json.error.code, "E_ADDRESS_IN_USE");
  const named = `\\(pid ${foreign.pid}, python3: \\S*python3 \\S*slow_server.py --port ${port}`;
  assert.match(r.json.error.message, new RegExp(`^port ${port} of the ready URL is already taken: .*${named}`));
  assert.equal(r.json.error.details.pid, foreign.pid);
  assert.deepEqual(storeEntries(), []);
  assert.deepEqual(processesWith("--ballast-mb\u00001"), [], "the server was never started");
  assert.ok(await answering(port), "the foreign process is left alone");
  foreign.kill("SIGKILL");
});

test("a foreign process that takes the port while the server starts: refused when the ready URL answers", async () => {
  const port = await freePort();
  const pidFile = join(home, "foreign.pid");
  // The launched server double-forks a daemon (its own session, re-parented out of the tree) that serves the port,
  // and never listens itself: exactly "another process answering the ready URL".
  const script = [
    "import os, time",
    "if os.fork() == 0:",
    "    os.setsid()",
    "    if os.fork() == 0:",
    `        open(${JSON.stringify(pidFile)}, 'w').write(str(os.getpid()))`,
    `        os.execvp('python3', ['python3', ${JSON.stringify(SLOW)}, '--port', '${port}', '--startup-seconds', '0'])`,
    "    os._exit(0)",
    "time.sleep(6029)",
  ].join("\n");
  const r = await stasis(["capture", "foreign-ready", "--json", ...urls(port), "--", "python3", "-c", script], env);
  const daemon = Number(readFileSync(pidFile, "utf8"));
  strays.push(daemon);
  assert.equal(r.code, 6, r.output);
  assert.equal(r.json.error.code, "E_WRONG_SERVER");
  const outside = `is held by a process outside the launched server's tree \\(pid ${daemon}, python3`;
  assert.match(r.json.error.message, new RegExp(`^when the ready URL answered, 127\\.0\\.0\\.1:${port} .* ${outside}`));
  assert.deepEqual(storeEntries(), []);
  assert.deepEqual(processesWith("time.sleep(6029)"), [], "the launched server was stopped");
  killQuietly(daemon);
});

test("a canary that changes between requests is refused at capture with a hint that helps", async () => {
  const port = await freePort();
  const r = await stasis(["capture", "changing-canary", "--json", ...urls(port, "/stats"), ...server(port)], env);
  assert.equal(r.code, 6, r.output);
  assert.equal(r.json.error.code, "E_CANARY_UNSTABLE");
  const requests = /\\"requests\\": \d+}/.source;
  assert.match(
    r.json.error.message,
    new RegExp(`GET /stats answered differently twice in a row: .*${requests}.*, then .*${requests}`),
  );
  assert.match(r.json.error.hint, /deterministic.*temperature 0.*--canary-body/);
  assert.deepEqual(storeEntries(), []);
  assert.equal(await answering(port), false, "the server was stopped");
});

test("a periodic timerfd: the manifest records it; rm removes the snapshot's nftables table", async () => {
  const port = await freePort();
  const r = await stasis(["capture", "timer", ...urls(port), ...server(port, "--timer-ms", "50")], env);
  assert.equal(r.code, 0, r.output);
  const m = (await stasis(["inspect", "timer", "--json"], env)).json.manifest;
  assert.equal(m.periodicTimers.length, 1);
  assert.equal(m.periodicTimers[0].intervalNs, 50_000_000);
  // Never restored: the dump's network lock is still there, and the snapshot owns it.
  const table = m.criu.networkLockTable as string;
  assert.match(table, /^CRIU-[0-9a-f-]+$/);
  assert.ok((await lockTables()).includes(table), `${table} is listed after the capture`);
  const doctor = (await stasis(["doctor", "--json"], env)).json.checks.find(
    (c: { name: string }) => c.name === "lock tables",
  );
  assert.match(doctor.detail, /^CRIU lock tables: 1 kept for snapshots not restored yet/);
  assert.doesNotMatch(doctor.detail, new RegExp(table), "doctor matches the table to its snapshot");
  const rm = await stasis(["rm", "timer", "--json"], env);
  assert.equal(rm.code, 0, rm.output);
  assert.deepEqual(rm.json.networkLocksRemoved, [table]);
  assert.equal((await lockTables()).includes(table), false, `${table} is gone after rm`);
});

test("a periodic timerfd that expired while frozen comes back disarmed: the restore re-arms it", async () => {
  const port = await freePort();
  // A 1 ms period always expires between the freeze and the dump of the process's descriptors.
  const cap = await stasis(["capture", "ticking", "--json", ...urls(port), ...server(port, "--timer-ms", "1")], env);
  assert.equal(cap.code, 0, cap.output);
  const dumpLog = readFileSync(join(home, "snapshots", "ticking", "logs", "criu-dump.log"), "utf8");
  assert.match(
    dumpLog,
    /timerfd: Dumping id \S+ clockid 1 it_value\(0, 0\) it_interval\(0, 1000000\)/,
    "dumped disarmed",
  );
  const res = await stasis(["restore", "ticking", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.ok(res.json.phases.some((p: { name: string }) => p.name === "timers"));
  try {
    const ticks = async () => JSON.parse((await httpOk(`http://127.0.0.1:${port}/timer`)).body).ticks as number;
    const before = await ticks();
    await new Promise((r) => setTimeout(r, 300));
    const later = await ticks();
    assert.ok(later - before >= 50, `the timer fires again: ${before} -> ${later} ticks in 300 ms`);
  } finally {
    assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
    assert.equal((await stasis(["rm", "ticking"], env)).code, 0);
  }
});

test("a restore unlocks the snapshot's nftables table; rm afterwards has none left to remove", async () => {
  const port = await freePort();
  const cap = await stasis(["capture", "restored", "--json", ...urls(port), ...server(port)], env);
  assert.equal(cap.code, 0, cap.output);
  const table = cap.json.manifest.criu.networkLockTable as string;
  assert.ok((await lockTables()).includes(table));
  const res = await stasis(["restore", "restored", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.equal((await lockTables()).includes(table), false, "CRIU's restore removed the lock it no longer needs");
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
  const rm = await stasis(["rm", "restored", "--json"], env);
  assert.deepEqual([rm.code, rm.json.networkLocksRemoved], [0, []]);
});

test("SIGINT during the dump stops CRIU, commits nothing, exits non-zero, leaves no server and no nftables table", async () => {
  const port = await freePort();
  const before = instanceIds();
  // 768 MiB of random memory: the dump writes for a second or more after it has locked the network.
  const cap = capturing(["capture", "interrupted", ...urls(port), ...server(port, "--ballast-mb", "768")]);
  const log = await until("the dump to lock the network", () => dumpLogWith(/Lock network/, before), 120_000);
  cap.child.kill("SIGINT");
  const r = await cap.done;
  assert.equal(r.code, 6, r.stderr); // not 0 with a snapshot committed, as when the dump ignored the interrupt
  assert.match(r.stderr, /stasis: error E_INTERRUPTED: capture interrupted during the CRIU dump/);
  const text = readFileSync(log, "utf8"); // a failed capture keeps its logs
  assert.doesNotMatch(text, /Dumping finished successfully/, "the dump was stopped before it finished");
  assert.deepEqual(storeEntries(), []);
  assert.equal(await answering(port), false);
  assert.deepEqual(processesWith("--ballast-mb\u0000768"), [], "the server was stopped, as a failed capture does");
  assert.deepEqual(processesWith(log), [], "CRIU is gone");
  const table = lockTableName(criuRunId(text)!);
  assert.equal((await lockTables()).includes(table), false, `${table} was removed`);
});

test("a killed capture's server is ended by its supervisor, its staging folder by the next ls", async () => {
  const port = await freePort();
  const slowStart = ["--", "python3", SLOW, "--port", String(port), "--startup-seconds", "60"];
  const cap = capturing(["capture", "killed", ...urls(port), ...slowStart]);
  const owner = await until("the staging folder to name its server", () => {
    const staging = storeEntries().find((n) => n.startsWith(".staging-killed-"));
    const file = staging && join(home, "snapshots", staging, "owner.json");
    const o = file && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
    return o?.server ? o : undefined;
  });
  cap.child.kill("SIGKILL");
  await cap.done;
  // The capture's supervisor (instances/supervisor.ts) ends its server within moments; should it be gone too, the
  // next command stops the server owner.json names. The staging folder waits for the next command.
  await until("the server to be ended", async () => !(await isRunning(owner.server.pid)), 10_000);
  assert.equal(storeEntries().filter((n) => n.startsWith(".")).length, 2, "its staging folder and lock are there");
  const ls = await stasis(["ls", "--json"], env);
  assert.equal(ls.code, 0, ls.output);
  assert.deepEqual(
    storeEntries().filter((n) => n.startsWith(".staging")),
    [],
  );
});

test("a capture killed during its dump: the next ls removes its staging folder and the dump's nftables table", async () => {
  const port = await freePort();
  const before = instanceIds();
  const cap = capturing(["capture", "killed-dump", ...urls(port), ...server(port, "--ballast-mb", "256")]);
  const log = await until("the dump to lock the network", () => dumpLogWith(/Lock network/, before), 120_000);
  cap.child.kill("SIGKILL");
  await cap.done;
  // CRIU runs in its own process group: it outlives the capture and ends its dump into the staging folder.
  await until("the orphaned CRIU to end", () => processesWith(log).length === 0 || undefined, 120_000);
  const table = lockTableName(criuRunId(readFileSync(log, "utf8"))!);
  // The capture's supervisor (instances/supervisor.ts) ends the server at once: CRIU's dump then fails and removes its
  // own lock, or, had it read the whole tree already, ends and leaves it. Either way the next ls leaves none.
  assert.equal(storeEntries().filter((n) => n.startsWith(".staging-killed-dump-")).length, 1);
  assert.equal((await stasis(["ls", "--json"], env)).code, 0);
  assert.deepEqual(
    storeEntries().filter((n) => n.startsWith(".staging")),
    [],
  );
  assert.equal((await lockTables()).includes(table), false, `${table} was removed with the dead capture's folder`);
});
