import { readConfig } from "../config/config.js";
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
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { MAX_BODY_BYTES } from "./daemon.js";
import { daemonLog } from "./log.js";
import { api, assertAnswer } from "../testing/daemon-api.js";
import { series } from "../testing/prometheus.js";
import { REPO } from "../testing/cli.js";
import { until } from "../testing/wait.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read any field of the answer
function post(socket: string, body: string, path = "/v1/restore"): Promise<{ status: number; body: any }> {
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

const request = (name: string): RestoreRequest => ({
  name,
  verify: "auto",
  prefetch: "none",
  force: false,
  readyTimeoutMs: 1000,
});

/** `body` with a fresh STASIS_HOME and a socket path in it, and a stop signal for the daemon it starts; undone
 *  after. */
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

/** Leaves a real socket file at `path` that nothing listens on: a process bound it and was killed. */
async function staleSocket(path: string): Promise<void> {
  const listen = `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`;
  const child = spawn(process.execPath, ["-e", listen], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await gone;
  assert.ok(statSync(path).isSocket());
}

/** Until the daemon answers on `socket` (a stale socket file there does not count). */
function listening(socket: string): Promise<void> {
  return until(`the daemon to answer on ${socket}`, async () => (await health(socket)) === 200);
}

/** The status of GET /v1/health on `socket`; 0 when nothing answers. */
function health(socket: string): Promise<number> {
  return new Promise((resolve) =>
    httpRequest({ socketPath: socket, agent: false, path: "/v1/health" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on("error", () => resolve(0))
      .end(),
  );
}

test("the daemon runs restores for clients: its events replay in the client, its errors come back whole", () =>
  withHome(async (socket, stop) => {
    await staleSocket(socket); // the socket of a daemon that died: taken over
    const running = serve({ settings: readConfig(), socket, signal: stop.signal }, new Events());
    await listening(socket);
    assert.equal(statSync(socket).mode & 0o777, 0o600, "root's alone");
    await assert.rejects(
      serve({ settings: readConfig(), socket }, new Events()),
      (e: unknown) => e instanceof StasisError && e.code === "E_DAEMON",
      "one daemon per socket",
    );

    const events = new Events();
    const seen: StasisEvent[] = [];
    events.on((e) => seen.push(e));
    await assert.rejects(
      restoreViaDaemon(request("no-such-snapshot"), events, { socket }),
      (e: unknown) => e instanceof StasisError && e.code === "E_SNAPSHOT_NOT_FOUND" && Boolean(e.hint),
    );
    assert.ok(
      seen.some((e) => e.type === "phase-end" && e.phase === "open" && !e.ok),
      "the daemon's failed open phase reached the client",
    );

    // A bad body is refused at the door, naming the field.
    const bad = await post(socket, JSON.stringify({ ...request("x"), verify: "sometimes" }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, "E_USAGE");
    assert.match(bad.body.error.message, /verify/);
    // So are knobs a request cannot set, or bad values, naming the knob.
    const home = await post(socket, JSON.stringify({ ...request("x"), config: { STASIS_HOME: "/tmp" } }));
    assert.equal(home.status, 400);
    assert.match(home.body.error.message, /cannot set STASIS_HOME/);
    assert.match(home.body.error.hint, /STASIS_WORKING_SET/);
    const value = await post(socket, JSON.stringify({ ...request("x"), config: { STASIS_WORKING_SET: "sometimes" } }));
    assert.equal(value.status, 400);
    assert.match(
      value.body.error.message,
      /STASIS_WORKING_SET="sometimes" \(from the request\) is not valid: expected 1 or 0/,
    );
    // A capture's knobs are checked the same way, before any server starts.
    const capture = {
      name: "x",
      argv: ["false"],
      cwd: "/",
      readyUrl: "http://127.0.0.1:9/health",
      canary: { method: "GET", path: "/" },
    };
    const capHome = await post(socket, JSON.stringify({ ...capture, config: { STASIS_HOME: "/tmp" } }), "/v1/captures");
    assert.equal(capHome.status, 400);
    assert.equal(capHome.body.error.code, "E_USAGE");
    assert.match(capHome.body.error.message, /cannot set STASIS_HOME/);
    const capValue = await post(
      socket,
      JSON.stringify({ ...capture, config: { STASIS_IO_URING_FILTER: "maybe" } }),
      "/v1/captures",
    );
    assert.equal(capValue.status, 400);
    assert.match(capValue.body.error.message, /STASIS_IO_URING_FILTER="maybe" \(from the request\) is not valid/);

    // Releasing pinned weights: a daemon without --pin-weights has none, and pins none.
    assert.equal(await releaseDaemonWeights({ socket }), 0);
    const pin = await pinDaemonWeights("x", { socket });
    assert.ok(pin && "notPinned" in pin && /does not pin weights/.test(pin.notPinned), JSON.stringify(pin));

    stop.abort();
    const r = await running;
    assert.equal(r.restores, 1);
    assert.equal(existsSync(socket), false, "the socket is removed on the way out");
    assert.equal(
      await restoreViaDaemon(request("x"), new Events(), { socket }),
      undefined,
      "no daemon: the caller restores itself",
    );
    assert.equal(await releaseDaemonWeights({ socket }), undefined, "no daemon: nothing pinned to release");
    assert.equal(await pinDaemonWeights("x", { socket }), undefined, "no daemon: nobody to pin");
  }));

test("a daemon with --pin-weights pins a snapshot's weights on request, and says why it cannot", () =>
  withHome(async (socket, stop) => {
    const running = serve({ settings: readConfig(), socket, signal: stop.signal, pinWeights: true }, new Events());
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

test("serve --socket never deletes what it is given: a file, a folder or a symlink there is refused and kept", () =>
  withHome(async (socket) => {
    const refused = (e: unknown) =>
      e instanceof StasisError && e.code === "E_USAGE" && /only replaces a stale socket/.test(e.message) && !!e.hint;
    writeFileSync(socket, "someone's data");
    await assert.rejects(serve({ settings: readConfig(), socket }, new Events()), refused);
    assert.equal(readFileSync(socket, "utf8"), "someone's data");
    const folder = socket + ".d";
    mkdirSync(folder);
    await assert.rejects(serve({ settings: readConfig(), socket: folder }, new Events()), refused);
    assert.ok(statSync(folder).isDirectory());
    const link = socket + ".link";
    symlinkSync(socket, link);
    await assert.rejects(serve({ settings: readConfig(), socket: link }, new Events()), refused);
    assert.equal(readFileSync(link, "utf8"), "someone's data");
  }));

/** POSTs `bytes` of body to the daemon in 64 KiB writes (or declares `declared` bytes and sends a few); the answer. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function postLarge(socket: string, bytes: number, declared?: number): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers = declared === undefined ? {} : { "content-length": String(declared) };
    const at = { socketPath: socket, agent: false, method: "POST", path: "/v1/restore", headers };
    const req = httpRequest(at, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    // The daemon may answer and hang up before the whole body is sent: the answer is what counts.
    req.on("error", (err) => (req.destroyed && err.message.match(/EPIPE|ECONNRESET/) ? undefined : reject(err)));
    const chunk = Buffer.alloc(64 * 1024, "x");
    let sent = 0;
    const write = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", write);
      }
      if (declared === undefined) req.end();
    };
    write();
  });
}

test("an oversized request body is answered 413 with the error, and the daemon stays up", () =>
  withHome(async (socket, stop) => {
    const running = serve({ settings: readConfig(), socket, signal: stop.signal }, new Events());
    await listening(socket);
    const rssBefore = process.memoryUsage().rss;
    const big = await postLarge(socket, 64 * 2 ** 20);
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, "E_TOO_LARGE");
    assert.match(big.body.error.message, new RegExp(`at most ${MAX_BODY_BYTES} bytes`));
    assert.ok(big.body.error.hint);
    assert.ok(process.memoryUsage().rss - rssBefore < 48 * 2 ** 20, "the body was not held in memory");
    // Declared too large (700 MB): refused before a byte of it is read.
    const declared = await postLarge(socket, 64 * 1024, 700_000_000);
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, "E_TOO_LARGE");
    assert.equal(await health(socket), 200, "the daemon still answers");
    await assert.rejects(
      restoreViaDaemon(request("no-such-snapshot"), new Events(), { socket }),
      (e: unknown) => e instanceof StasisError && e.code === "E_SNAPSHOT_NOT_FOUND",
      "and still takes restores",
    );
    stop.abort();
    await running;
  }));

test("the API on the socket: list, stop, an unknown route, a failed restore counted in /metrics, answers as published", () =>
  withHome(async (socket, stop) => {
    const logged: string[] = [];
    const log = daemonLog("json", (l) => logged.push(l));
    const running = serve({ settings: readConfig(), socket, signal: stop.signal, log }, new Events());
    await listening(socket);
    const at = { socket };
    const health = await api(at, "GET", "/v1/health");
    assert.equal(health.status, 200);
    assertAnswer(health.json, "Health");
    assert.match(String(health.headers["x-request-id"]), /^r\d+$/);

    const list = await api(at, "GET", "/v1/instances?all=true");
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, { instances: [] });
    assertAnswer(list.json, "Instances");
    const badQuery = await api(at, "GET", "/v1/instances?all=maybe");
    assert.equal(badQuery.status, 400);
    assert.match(badQuery.json.error.message, /all/);
    assert.match(badQuery.json.error.hint, /\{all\?\}/);

    const gone = await api(at, "DELETE", "/v1/instances/abc123");
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, "E_INSTANCE_NOT_FOUND");
    assertAnswer(gone.json, "ErrorAnswer");
    const badId = await api(at, "DELETE", "/v1/instances/..%2Fetc");
    assert.equal(badId.status, 400, "an id is hex, nothing else reaches the store");

    const served = await api(at, "GET", "/v1/openapi.json");
    assert.deepEqual(
      served.json,
      JSON.parse(readFileSync(join(REPO, "schemas", "openapi.json"), "utf8")),
      "as published",
    );

    const unknown = await api(at, "GET", "/v1/nothing");
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error.message, /no GET \/v1\/nothing here/);

    // A restore that fails: its events and its error come as NDJSON lines, and /metrics counts it by code.
    const failed = await api(at, "POST", "/v1/restore", request("no-such-snapshot"));
    assert.equal(failed.status, 200);
    assert.equal(failed.headers["content-type"], "application/x-ndjson");
    for (const line of failed.lines) assertAnswer(line, "RestoreLine");
    assert.equal(failed.lines.at(-1).error.code, "E_SNAPSHOT_NOT_FOUND");
    const metrics = await api(at, "GET", "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers["content-type"]), /^text\/plain/);
    assert.equal(
      series(metrics.text, "stasis_failures_total", { operation: "restore", code: "E_SNAPSHOT_NOT_FOUND" }),
      1,
    );
    assert.equal(series(metrics.text, "stasis_pinned_weight_bytes"), 0);
    // A capture refused at its door: the body names what is wrong.
    const capture = await api(at, "POST", "/v1/captures", {
      name: "x",
      argv: [],
      cwd: "/",
      readyUrl: "http://127.0.0.1:1/",
    });
    assert.equal(capture.status, 400);
    assert.match(capture.json.error.message, /argv/);

    stop.abort();
    await running;
    const records = logged.map((l) => JSON.parse(l));
    const requests = records.filter((r) => r.kind === "request");
    assert.deepEqual(
      requests
        .map((r) => `${r.method} ${r.url} ${r.status}`)
        .filter((r) => !r.includes("health"))
        .slice(0, 2),
      ["GET /v1/instances?all=true 200", "GET /v1/instances?all=maybe 400"],
    );
    assert.ok(requests.every((r) => r.via === "unix" && typeof r.ms === "number"));
    const restoreRequest = requests.find((r) => r.url === "/v1/restore")!.id;
    assert.ok(
      records.some((r) => r.kind === "event" && r.request === restoreRequest && r.event.type === "phase-end"),
      "the restore's events, tagged with its request",
    );
    assert.ok(records.some((r) => r.kind === "log" && /restore failed: E_SNAPSHOT_NOT_FOUND/.test(r.msg)));
  }));

test("on TCP every request needs the token: none or a wrong one is refused 401, the right one is served", () =>
  withHome(async (socket, stop) => {
    const token = "tcp-test-token-0123456789";
    // The unix socket answers before the TCP listener is bound: wait for onListening, which comes after both.
    let bound!: (port: number) => void;
    const tcpPort = new Promise<number>((resolve) => (bound = resolve));
    const running = serve(
      {
        settings: readConfig(),
        socket,
        signal: stop.signal,
        tcp: { host: "127.0.0.1", port: 0, token },
        onListening: (w) => bound(w.tcp!.port),
      },
      new Events(),
    );
    const port = await tcpPort;
    assert.ok(port > 0);
    for (const [why, at] of [
      ["no token", { port }],
      ["a wrong token", { port, token: token + "x" }],
    ] as const) {
      for (const [method, path] of [
        ["GET", "/v1/health"],
        ["GET", "/v1/instances"],
        ["GET", "/metrics"],
        ["POST", "/v1/restore"],
        ["DELETE", "/v1/instances/ab"],
      ]) {
        const r = await api(at, method!, path!, method === "POST" ? request("x") : undefined);
        assert.equal(r.status, 401, `${why}: ${method} ${path}`);
        assert.equal(r.json.error.code, "E_UNAUTHORIZED");
        assert.equal(r.headers["www-authenticate"], "Bearer");
      }
    }
    const ok = await api({ port, token }, "GET", "/v1/health");
    assert.equal(ok.status, 200);
    assert.equal(ok.json.pid, process.pid);
    const restore = await api({ port, token }, "POST", "/v1/restore", request("no-such-snapshot"));
    assert.equal(restore.lines.at(-1).error.code, "E_SNAPSHOT_NOT_FOUND");
    assert.equal((await api({ socket }, "GET", "/v1/health")).status, 200, "the socket needs no token");
    stop.abort();
    await running;
  }));

test("the daemon is not served on TCP without a token", () =>
  withHome(async (socket) => {
    await assert.rejects(
      serve({ settings: readConfig(), socket, tcp: { host: "127.0.0.1", port: 0, token: "" } }, new Events()),
      (e: unknown) => e instanceof StasisError && e.code === "E_USAGE" && /without a token/.test(e.message),
    );
    assert.equal(existsSync(socket), false, "nothing was listening");
  }));
