import { test } from "node:test";
import assert from "node:assert/strict";
import { daemonLog } from "./log.js";

const at = () => new Date("2026-12-07T10:00:00.000Z");
const request = {
  id: "r7",
  method: "POST",
  url: "/v1/restore",
  status: 200,
  ms: 812.4,
  via: "tcp" as const,
  remote: "127.0.0.1",
};

test("--log-format json: one JSON object a line, for the daemon's lines, each operation event and each request", () => {
  const lines: string[] = [];
  const log = daemonLog("json", (l) => lines.push(l), at);
  log.event({ type: "log", t: 1, level: "warn", message: "keeper slow" });
  log.event(
    { type: "phase-end", phase: "criu-restore", t: 5, ms: 4, ok: true },
    { request: "r7", operation: "restore" },
  );
  log.event(
    { type: "progress", phase: "prefetch", t: 5, done: 1, total: 2, unit: "bytes" },
    { request: "r7", operation: "restore" },
  );
  log.event({ type: "phase-end", phase: "open", t: 5, ms: 4, ok: false }, { request: "r7", operation: "restore" });
  log.request(request);
  log.request({ ...request, status: 500 });
  assert.ok(
    lines.every((l) => l.endsWith("\n") && l.indexOf("\n") === l.length - 1),
    "one line each",
  );
  const parsed = lines.map((l) => JSON.parse(l));
  assert.deepEqual(parsed[0], { time: "2026-12-07T10:00:00.000Z", level: "warn", kind: "log", msg: "keeper slow" });
  assert.deepEqual(parsed[1], {
    time: "2026-12-07T10:00:00.000Z",
    level: "info",
    kind: "event",
    request: "r7",
    operation: "restore",
    event: { type: "phase-end", phase: "criu-restore", t: 5, ms: 4, ok: true },
  });
  assert.equal(parsed[2].level, "warn", "a failed phase is a warning; progress ticks are left out");
  assert.deepEqual(parsed[3], { time: "2026-12-07T10:00:00.000Z", level: "info", kind: "request", ...request });
  assert.equal(parsed[4].level, "warn");
  assert.equal(parsed.length, 5);
});

test("--log-format text: the daemon's lines and the requests, not each operation's events", () => {
  const lines: string[] = [];
  const log = daemonLog("text", (l) => lines.push(l), at);
  log.event({ type: "log", t: 1, level: "info", message: "stasis serve: listening on /x.sock" });
  log.event({ type: "log", t: 1, level: "warn", message: "keeper slow" });
  log.event(
    { type: "phase-end", phase: "criu-restore", t: 5, ms: 4, ok: true },
    { request: "r7", operation: "restore" },
  );
  log.request(request);
  assert.deepEqual(lines, [
    "2026-12-07T10:00:00.000Z stasis serve: listening on /x.sock\n",
    "2026-12-07T10:00:00.000Z warning: keeper slow\n",
    "2026-12-07T10:00:00.000Z POST /v1/restore 200 812 ms (tcp 127.0.0.1, r7)\n",
  ]);
});
