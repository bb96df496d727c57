import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Events, type WaitingEvent } from "../events.js";
import { pollReady } from "./http-engine.js";

test("the readiness wait reports, about every interval, its elapsed time, the last answer and the server's log", async () => {
  let answers = 0;
  const server = createServer((_req, res) => {
    answers++;
    res.writeHead(answers < 8 ? 503 : 200).end();
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    const events = new Events();
    const seen: WaitingEvent[] = [];
    events.on((e) => e.type === "waiting" && seen.push(e));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await pollReady(
      { baseUrl: base, events, alive: () => true, logPath: "/logs/stderr.log" },
      "/health",
      10_000,
      20,
      40,
    );
    assert.ok(seen.length >= 2, `${seen.length} waiting events`);
    assert.ok(seen.every((e) => e.phase === "ready" && e.url === `${base}/health` && e.logPath === "/logs/stderr.log"));
    assert.equal(seen.at(-1)!.last, "HTTP 503");
    assert.ok(seen[1]!.elapsedMs > seen[0]!.elapsedMs);
  } finally {
    server.close();
  }
});

test("before a server listens, the wait reports the connection error", async () => {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  const events = new Events();
  const seen: WaitingEvent[] = [];
  events.on((e) => e.type === "waiting" && seen.push(e));
  await assert.rejects(
    pollReady({ baseUrl: `http://127.0.0.1:${port}`, events, alive: () => true, logPath: "/l" }, "/", 300, 20, 50),
    /not ready/,
  );
  assert.ok(seen.length >= 2);
  assert.match(seen.at(-1)!.last, /ECONNREFUSED/);
});
