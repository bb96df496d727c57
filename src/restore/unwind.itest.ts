/**
 * The restore's cleanup stack, for real: a restore interrupted once CRIU has brought the tree back, and one whose
 * canary fails, leave no process, no instance record and no claim behind (real CRIU, the example slow server).
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stasis, tempHome, EXAMPLES } from "../testing/cli.js";
import { httpOk } from "../engines/http-client.js";
import { freePort } from "../proc/net.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { restore } from "./restore.js";
import { loadConfig } from "../config/config.js";

const { env, home, teardown } = tempHome();
process.env.STASIS_HOME = home; // restore() runs in this process
let base = "";
let port = 0;

before(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const cap = await stasis(
    [
      "capture",
      "unwind",
      "--json",
      "--ready-url",
      `${base}/health`,
      "--canary-url",
      `${base}/answer?q=canary`,
      "--",
      "python3",
      join(EXAMPLES, "slow_server.py"),
      "--port",
      String(port),
      "--startup-seconds",
      "1",
    ],
    env,
  );
  assert.equal(cap.code, 0, cap.output);
});
after(() => teardown(1));

/** Processes whose command line names the snapshot's server and port. */
function serversLeft(): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd.some((a) => a.endsWith("slow_server.py")) && cmd.includes(String(port))) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

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
      restoredTree = serversLeft().length > 0;
      abort.abort();
    }
  });
  await assert.rejects(
    restore({ ...opts, signal: abort.signal }, events),
    (e: unknown) => e instanceof StasisError && e.code === "E_INTERRUPTED",
  );
  assert.ok(restoredTree, "CRIU had restored the server before the interrupt");
  assert.deepEqual(serversLeft(), []);
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
  assert.deepEqual(serversLeft(), []);
  assert.deepEqual(recordsLeft(), []);
  const res = await restore(opts, new Events());
  assert.equal((await httpOk(`${base}/health`)).status, 200);
  assert.deepEqual(recordsLeft(), [res.instance.id]);
});
