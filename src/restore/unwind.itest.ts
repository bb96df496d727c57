/**
 * The restore's cleanup stack, for real: a restore interrupted once CRIU has brought the tree back, and one whose
 * canary fails, leave no process, no instance record and no claim behind (real CRIU, the example slow server).
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stasis, tempHome } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample, examplesOn } from "../testing/example.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { createServer } from "node:net";
import { once } from "node:events";
import { restore } from "./restore.js";
import { loadConfig } from "../config/config.js";

const { env, home, teardown } = tempHome();
process.env.STASIS_HOME = home; // restore() runs in this process
let base = "";
let port = 0;

before(async () => {
  ({ port, base } = await captureExample("unwind", env, { startupSeconds: 1, canary: "/answer?q=canary" }));
});
after(() => teardown(1));

/** Instance records left in the home (a claim is one too). */
function recordsLeft(): string[] {
  const dir = join(home, "instances");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((id) => existsSync(join(dir, id, "instance.json")));
}

const opts = {
  name: "unwind",
  verify: "auto",
  prefetch: "auto",
  force: false,
  readyTimeoutMs: 30_000,
  config: loadConfig(),
} as const;

test("a restore interrupted after CRIU brought the tree back ends it: no process, no record, no claim", async () => {
  const abort = new AbortController();
  const events = new Events();
  let restoredTree = false;
  events.on((e) => {
    if (e.type === "phase-end" && e.phase === "criu-restore" && e.ok) {
      restoredTree = examplesOn(port).length > 0;
      abort.abort();
    }
  });
  await assert.rejects(
    restore({ ...opts, signal: abort.signal }, events),
    (e: unknown) => e instanceof StasisError && e.code === "E_INTERRUPTED",
  );
  assert.ok(restoredTree, "CRIU had restored the server before the interrupt");
  assert.deepEqual(examplesOn(port), []);
  assert.deepEqual(recordsLeft(), []);
  await assert.rejects(httpOk(`${base}/health`, { timeoutMs: 1000 }));
});

test("a restore whose canary does not match ends the restored tree; the next restore of the snapshot serves", async () => {
  const manifestPath = join(home, "snapshots", "unwind", "manifest.json");
  const original = readFileSync(manifestPath, "utf8");
  const m = JSON.parse(original);
  m.engine.canary.sha256 = "0".repeat(64);
  writeFileSync(manifestPath, JSON.stringify(m));
  try {
    await assert.rejects(
      restore(opts, new Events()),
      (e: unknown) => e instanceof StasisError && e.code === "E_CANARY_MISMATCH",
    );
  } finally {
    writeFileSync(manifestPath, original);
  }
  assert.deepEqual(examplesOn(port), []);
  assert.deepEqual(recordsLeft(), []);
  const res = await restore(opts, new Events());
  assert.equal((await httpOk(`${base}/health`)).status, 200);
  assert.deepEqual(recordsLeft(), [res.instance.id]);
});

test("the preflight runs beside the claim: its failure gives the claim back; both failing, the claim's error is told", async () => {
  assert.equal((await stasis(["stop", "--all", "--grace", "1"], env)).code, 0, "the last test's instance stopped");
  const noCriu = { ...opts, config: { ...opts.config, criu: "/nonexistent/criu" } };
  const events = new Events();
  const started = new Map<string, number>();
  const ended = new Map<string, number>();
  events.on((e) => {
    if (e.type === "phase-start") started.set(e.phase, e.t);
    if (e.type === "phase-end") ended.set(e.phase, e.t);
  });
  await assert.rejects(
    restore(noCriu, events),
    (e: unknown) => e instanceof StasisError && e.code === "E_CRIU_MISSING",
  );
  assert.ok(started.get("preflight")! < ended.get("open")!, "the preflight started before the claim was done");
  assert.deepEqual(recordsLeft(), [], "the claim was given back");
  assert.deepEqual(examplesOn(port), []);
  // The snapshot's address taken as well: the claim's refusal is the error, as when the steps ran one by one.
  const taken = createServer().listen(port, "127.0.0.1");
  await once(taken, "listening");
  try {
    await assert.rejects(
      restore(noCriu, new Events()),
      (e: unknown) => e instanceof StasisError && e.code === "E_ADDRESS_IN_USE",
    );
  } finally {
    taken.close();
  }
  assert.deepEqual(recordsLeft(), []);
});
