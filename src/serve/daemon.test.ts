import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "./daemon.js";
import { pinDaemonWeights, releaseDaemonWeights, restoreViaDaemon } from "./client.js";
import { Events, type StasisEvent } from "../events.js";
import { StasisError } from "../errors.js";
import type { RestoreRequest } from "./protocol.js";
import { request as httpRequest } from "node:http";

function post(socket: string, body: string, path = "/v1/restore"): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, agent: false, method: "POST", path }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const request = (name: string): RestoreRequest => ({ name, verify: "auto", prefetch: "none", force: false, readyTimeoutMs: 1000 });

/** `body` with a fresh STASIS_HOME and a socket path in it, and a stop signal for the daemon it starts; undone after. */
async function withHome(body: (socket: string, stop: AbortController) => Promise<void>): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), "stasis-serve-"));
  const before = process.env.STASIS_HOME;
  process.env.STASIS_HOME = home;
  const stop = new AbortController();
  try {
    await body(join(home, "d.sock"), stop);
  } finally {
    stop.abort();
    if (before === undefined) delete process.env.STASIS_HOME;
    else process.env.STASIS_HOME = before;
    rmSync(home, { recursive: true, force: true });
  }
}

async function listening(socket: string): Promise<void> {
  for (let i = 0; i < 200 && !(existsSync(socket) && statSync(socket).isSocket()); i++) await new Promise((r) => setTimeout(r, 10));
}

test("the daemon runs restores for clients: its events replay in the client, its errors come back whole", () =>
  withHome(async (socket, stop) => {
    writeFileSync(socket, ""); // a stale socket file from a daemon that died: taken over
    const running = serve({ socket, signal: stop.signal }, new Events());
    await listening(socket);
    assert.equal(statSync(socket).mode & 0o777, 0o600, "root's alone");
    await assert.rejects(serve({ socket }, new Events()), (e: unknown) => e instanceof StasisError && e.code === "E_DAEMON", "one daemon per socket");

    const events = new Events();
    const seen: StasisEvent[] = [];
    events.on((e) => seen.push(e));
    await assert.rejects(
      restoreViaDaemon(request("no-such-snapshot"), events, { socket }),
      (e: unknown) => e instanceof StasisError && e.code === "E_SNAPSHOT_NOT_FOUND" && Boolean(e.hint),
    );
    assert.ok(seen.some((e) => e.type === "phase-end" && e.phase === "open" && !e.ok), "the daemon's failed open phase reached the client");

    // A bad body is refused at the door, naming the field.
    const bad = await post(socket, JSON.stringify({ ...request("x"), verify: "sometimes" }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, "E_USAGE");
    assert.match(bad.body.error.message, /verify/);

    // Releasing pinned weights: a daemon without --pin-weights has none, and pins none.
    assert.equal(await releaseDaemonWeights({ socket }), 0);
    const pin = await pinDaemonWeights("x", { socket });
    assert.ok(pin && "notPinned" in pin && /does not pin weights/.test(pin.notPinned), JSON.stringify(pin));

    stop.abort();
    const r = await running;
    assert.equal(r.restores, 1);
    assert.equal(existsSync(socket), false, "the socket is removed on the way out");
    assert.equal(await restoreViaDaemon(request("x"), new Events(), { socket }), undefined, "no daemon: the caller restores itself");
    assert.equal(await releaseDaemonWeights({ socket }), undefined, "no daemon: nothing pinned to release");
    assert.equal(await pinDaemonWeights("x", { socket }), undefined, "no daemon: nobody to pin");
  }));

test("a daemon with --pin-weights pins a snapshot's weights on request, and says why it cannot", () =>
  withHome(async (socket, stop) => {
    const running = serve({ socket, signal: stop.signal, pinWeights: true }, new Events());
    await listening(socket);
    const missing = await pinDaemonWeights("no-such-snapshot", { socket });
    assert.ok(missing && "notPinned" in missing && /no-such-snapshot/.test(missing.notPinned), JSON.stringify(missing));
    const bad = await post(socket, JSON.stringify({ snapshot: "x" }), "/v1/weights/pin");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, "E_USAGE");
    assert.match(bad.body.error.hint, /name/);
    stop.abort();
    await running;
  }));
