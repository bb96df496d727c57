/**
 * The capture's cleanup stack, for real: a capture interrupted once its server answers, and one interrupted during
 * the CRIU dump, leave no server, no staging folder, no snapshot and no instance record (real CRIU, the example slow
 * server).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, readdirSync } from "node:fs";
import { tempHome, EXAMPLES } from "../testing/cli.js";
import { freePort } from "../proc/net.js";
import { examplesOn } from "../testing/example.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { capture, type CaptureOptions } from "./capture.js";
import { loadConfig } from "../config/config.js";

const { home, teardown } = tempHome();
process.env.STASIS_HOME = home; // capture() runs in this process
after(() => teardown(1));

/** What a capture may leave in the home: snapshots (or staging folders) and instance records. */
function leftInHome(): { snapshots: string[]; records: string[] } {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const instances = join(home, "instances");
  return {
    snapshots: list(join(home, "snapshots")).filter((n) => !n.startsWith(".trash")),
    records: list(instances).filter((id) => existsSync(join(instances, id, "instance.json"))),
  };
}

async function interruptedAt(phase: string, name: string): Promise<void> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const opts: CaptureOptions = {
    name,
    argv: ["python3", join(EXAMPLES, "slow_server.py"), "--port", String(port), "--startup-seconds", "1"],
    cwd: process.cwd(),
    env: {},
    engine: "http",
    readyUrl: `${base}/health`,
    readyTimeoutMs: 30_000,
    warmup: 0,
    canary: { method: "GET", path: "/answer?q=canary" },
    leaveRunning: false,
    config: loadConfig(),
  };
  const abort = new AbortController();
  const events = new Events();
  let serverUp = false;
  events.on((e) => {
    if (e.type === "phase-start" && e.phase === phase) {
      serverUp = examplesOn(port).length > 0;
      abort.abort();
    }
  });
  await assert.rejects(capture({ ...opts, signal: abort.signal }, events), (e: unknown) => {
    assert.ok(e instanceof StasisError, String(e));
    assert.equal(e.code, "E_INTERRUPTED", e.message);
    return true;
  });
  assert.ok(serverUp, `the server ran when ${phase} started`);
  assert.deepEqual(examplesOn(port), []);
  assert.deepEqual(leftInHome(), { snapshots: [], records: [] });
}

test("a capture interrupted as its canary is asked stops its server and keeps nothing", () =>
  interruptedAt("canary", "cut-canary"));

test("a capture interrupted as CRIU dumps stops its server and keeps nothing", () =>
  interruptedAt("criu-dump", "cut-dump"));
