/**
 * The CLI's client against daemons it may meet: none (the work runs here), one of an older stasis that does not
 * know a route (the work runs here too, instead of failing), and one that refuses (its error comes back whole).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureViaDaemon, daemonOr, listViaDaemon, stopViaDaemon } from "./client.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";

/** A daemon on a socket that answers every request with `status` and `body`; closed after `run`. */
async function fakeDaemon(status: number, body: unknown, run: (socket: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "stasis-client-"));
  const socket = join(dir, "d.sock");
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(typeof body === "function" ? body(req) : body) + "\n");
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    await run(socket);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

const capture = {
  name: "x",
  argv: ["true"],
  cwd: "/",
  env: {},
  engine: "http" as const,
  readyUrl: "http://127.0.0.1:1/",
  readyTimeoutMs: 1,
  warmup: 0,
  leaveRunning: false,
};

test("no daemon: every call answers undefined, and daemonOr runs the work here", async () => {
  const socket = join(tmpdir(), `stasis-no-daemon-${process.pid}.sock`);
  assert.equal(await listViaDaemon(false, { socket }), undefined);
  assert.equal(await stopViaDaemon({ ids: ["ab"], all: false, graceMs: 1 }, { socket }), undefined);
  assert.equal(await captureViaDaemon(capture, new Events(), { socket }), undefined);
  assert.deepEqual(
    await daemonOr(
      async () => undefined,
      async () => "here",
    ),
    { value: "here", via: "process" },
  );
  assert.deepEqual(
    await daemonOr(
      async () => "there",
      async () => "here",
    ),
    { value: "there", via: "daemon" },
  );
});

test("regression: a daemon of an older stasis, which lacks the route, means the work runs here", () =>
  fakeDaemon(
    404,
    (req: { method: string; url: string }) => ({
      error: { code: "E_USAGE", message: `no ${req.method} ${req.url} here` },
    }),
    async (socket) => {
      assert.equal(await listViaDaemon(true, { socket }), undefined);
      assert.equal(await stopViaDaemon({ ids: ["ab"], all: false, graceMs: 1 }, { socket }), undefined);
      assert.equal(await captureViaDaemon(capture, new Events(), { socket }), undefined);
    },
  ));

test("a daemon's refusal comes back as its StasisError", () =>
  fakeDaemon(
    404,
    { error: { code: "E_INSTANCE_NOT_FOUND", message: 'no instance "ab"', hint: "`stasis ps`" } },
    async (socket) => {
      await assert.rejects(
        stopViaDaemon({ ids: ["ab"], all: false, graceMs: 1 }, { socket }),
        (e: unknown) => e instanceof StasisError && e.code === "E_INSTANCE_NOT_FOUND" && e.hint === "`stasis ps`",
      );
    },
  ));

test("a swap or a hibernate without a daemon is refused, saying what runs them (no running here instead)", async () => {
  const { swap } = await import("../commands/swap.js");
  const { hibernate } = await import("../commands/hibernate.js");
  const socket = join(tmpdir(), `stasis-none-${process.pid}.sock`);
  const req = { off: "a1", name: "qwen", verify: "auto", prefetch: "auto", force: false, readyTimeoutMs: 1 } as const;
  await assert.rejects(swap(req, new Events(), { socket }), (e: StasisError) => {
    assert.equal(e.code, "E_DAEMON");
    assert.match(e.message, /stasis swap needs a running stasis daemon, and none answers at/);
    assert.match(e.hint ?? "", /stasis serve/);
    return true;
  });
  await assert.rejects(hibernate({ id: "a1", socket }), (e: StasisError) => e.code === "E_DAEMON");
});
