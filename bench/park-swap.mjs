#!/usr/bin/env node
// Parked instances and swaps, timed through a running `stasis serve` (docs/parking.md). Run as root after
// `npm run build`, with the daemon up on the same STASIS_HOME:
//   node bench/park-swap.mjs A [B] [--repeat 5] [--swaps sequential,overlapped] [--out DIR]
// For snapshot A, --repeat times each: a plain restore (request to the daemon -> first token), then a park and a
// restore that takes the parked instance (request -> first token; the park's own time beside it). With B (a snapshot
// at another address): A serving and B parked, then --repeat swaps each way by each way of swapping, in turns (one
// there and back by one way, then by the other), each timed from its first request to the other's first token:
// "sequential" hibernates the serving one and then restores the other (a take of the parked or hibernated one);
// "overlapped" is `stasis swap` (POST /v1/swap): both at once, the other's wake once the serving one sleeps. Every
// take checks the canary (a mismatch fails the run). Prints a table of medians; writes DIR/park-swap.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const REPO = resolve(import.meta.dirname, "..");
const dist = (p) => import(join(REPO, "dist", p));
const { restoreViaDaemon, swapViaDaemon, callDaemon } = await dist("serve/client.js");
const { Events } = await dist("events.js");
const { openSnapshot } = await dist("store/store.js");
const { engineFor } = await dist("engines/engines.js");
const { stop } = await dist("commands/stop.js");

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    repeat: { type: "string", default: "5" },
    swaps: { type: "string", default: "sequential,overlapped" },
    out: { type: "string" },
  },
});
const [a, b] = positionals;
if (!a) {
  console.error("usage: node bench/park-swap.mjs A [B] [--repeat 5] [--swaps sequential,overlapped] [--out DIR]");
  process.exit(2);
}
const methods = values.swaps.split(",");
if (methods.length === 0 || methods.some((m) => m !== "sequential" && m !== "overlapped")) {
  console.error(`--swaps ${values.swaps}: expected sequential, overlapped or both, comma-separated`);
  process.exit(2);
}
const repeat = Number(values.repeat);
const request = (name) => ({ name, verify: "auto", prefetch: "auto", force: false, readyTimeoutMs: 600_000 });
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
const ms = (t0) => Math.round((performance.now() - t0) * 10) / 10;

/** The snapshot's first token (engine adapter's smallest real request), after a restore's answer. */
async function firstToken(name) {
  const m = (await openSnapshot(name)).manifest;
  const ctx = { baseUrl: m.server.url, events: new Events(), alive: () => true, logPath: "" };
  const c = m.engine.canary;
  await (
    await engineFor(m.engine.kind)
  ).firstToken(ctx, {
    method: c.method,
    path: c.path,
    ...(c.body ? { body: c.body } : {}),
  });
}

/** A restore through the daemon, timed from the request to the first token; `taken` says a parked one served it. */
async function restoreTimed(name, t0 = performance.now()) {
  const r = await restoreViaDaemon(request(name), new Events());
  if (!r) throw new Error("no stasis daemon answers: start `stasis serve` on this STASIS_HOME first");
  const readyMs = ms(t0);
  await firstToken(name);
  const canary = r.phases.some((p) => p.name === "canary" && p.ok);
  if (!canary) throw new Error(`restore of ${name} had no matched canary`);
  return { id: r.instance.id, readyMs, firstTokenMs: ms(t0), taken: r.taken, phases: r.phases };
}

const report = { host: hostname(), date: new Date().toISOString(), snapshots: [a, b].filter(Boolean), repeat };
report.plain = [];
report.parked = [];
for (let i = 0; i < repeat; i++) {
  const r = await restoreTimed(a);
  if (r.taken) throw new Error(`${a} is parked already: run with a daemon that holds none of it`);
  report.plain.push(r);
  await stop({ ids: [r.id], all: false, graceMs: 10_000 });
}
for (let i = 0; i < repeat; i++) {
  const t = performance.now();
  const parked = (await callDaemon("/v1/park", { name: a, count: 1 }, "the bench")).parked[0];
  const parkMs = ms(t);
  const r = await restoreTimed(a);
  if (!r.taken) throw new Error(`the restore of ${a} was not served by its parked instance`);
  report.parked.push({ ...r, parkMs, parkedId: parked.id });
  // Keep none parked while it serves: the next park needs its address.
  await callDaemon("/v1/park", { name: a, count: 0 }, "the bench");
  await stop({ ids: [r.id], all: false, graceMs: 10_000 });
}

if (b) {
  report.swaps = [];
  let serving = (await restoreTimed(a)).id;
  await callDaemon("/v1/park", { name: b, count: 1 }, "the bench");
  let [from, to] = [a, b];
  for (let i = 0; i < 2 * repeat * methods.length; i++) {
    const method = methods[Math.floor(i / 2) % methods.length];
    const r = method === "sequential" ? await swapInTurn(serving, to) : await swapAtOnce(serving, to);
    if (!r.taken) throw new Error(`the swap to ${to} was not served by a parked or hibernated instance`);
    report.swaps.push({ method, from, to, ...r });
    serving = r.id;
    [from, to] = [to, from];
  }
  await callDaemon("/v1/park", { name: b, count: 0 }, "the bench");
  await stop({ ids: [], all: true, graceMs: 10_000 });
}

/** Hibernate `serving`, then restore `to`: request of the hibernate -> first token of the other. */
async function swapInTurn(serving, to) {
  const t0 = performance.now();
  const hibernated = await callDaemon("/v1/hibernate", { id: serving }, "the bench");
  const hibernateMs = ms(t0);
  return { hibernateMs, hibernatePhases: hibernated.phases, ...(await restoreTimed(to, t0)) };
}

/** `stasis swap`: one request; the take beside the hibernate, its wake once the serving one's engine sleeps. */
async function swapAtOnce(serving, to) {
  const t0 = performance.now();
  const r = await swapViaDaemon({ ...request(to), off: serving }, new Events());
  if (!r) throw new Error("no stasis daemon answers: start `stasis serve` on this STASIS_HOME first");
  const readyMs = ms(t0);
  await firstToken(to);
  if (!r.restored.phases.some((p) => p.name === "canary" && p.ok)) throw new Error(`swap to ${to}: no canary`);
  if (!r.off.hibernated) throw new Error(`swap to ${to}: the instance going off was ended (${r.off.ended})`);
  return {
    id: r.restored.instance.id,
    readyMs,
    firstTokenMs: ms(t0),
    handOverMs: r.handOverMs,
    hibernateMs: r.off.hibernated.parkMs,
    hibernatePhases: r.off.phases,
    taken: r.restored.taken,
    phases: r.restored.phases,
  };
}

const row = (label, runs, key) =>
  `${label.padEnd(48)} ${String(median(runs.map((r) => r[key]))).padStart(9)} ms  (${runs.map((r) => r[key]).join(", ")})`;
console.log(row(`restore ${a}: first token`, report.plain, "firstTokenMs"));
console.log(row(`park ${a}`, report.parked, "parkMs"));
console.log(row(`take parked ${a}: first token`, report.parked, "firstTokenMs"));
if (report.swaps) {
  for (const dir of [
    [a, b],
    [b, a],
  ]) {
    for (const method of methods) {
      const runs = report.swaps.filter((s) => s.method === method && s.from === dir[0] && s.to === dir[1]);
      console.log(row(`swap ${dir[0]} -> ${dir[1]} (${method}): first token`, runs, "firstTokenMs"));
      if (method === "overlapped") console.log(row(`  the engine going off asleep`, runs, "handOverMs"));
    }
  }
}
const out = values.out ?? join(REPO, "bench/results", `${report.date.slice(0, 10)}-${hostname()}`, "park-swap");
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "park-swap.json"), JSON.stringify(report, null, 2) + "\n");
console.log(`wrote ${join(out, "park-swap.json")}`);
