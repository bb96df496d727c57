import { test } from "node:test";
import assert from "node:assert/strict";
import { exitStatusOf, notify } from "./foreground.js";
import { Events } from "../events.js";

test("the exit status a --foreground stasis ends with is the server's (128 + N for signal N)", () => {
  assert.equal(exitStatusOf({ code: 0 }), 0);
  assert.equal(exitStatusOf({ code: 3 }), 3);
  assert.equal(exitStatusOf({ signal: 15 }), 143);
  assert.equal(exitStatusOf({ lost: true }), 1);
});

test("no NOTIFY_SOCKET: nothing sent; an unreachable one: a warning, not a failure", () => {
  const events = new Events();
  const warnings: string[] = [];
  events.on((e) => {
    if (e.type === "log" && e.level === "warn") warnings.push(e.message);
  });
  assert.equal(notify("READY=1", events, {}), false);
  assert.equal(notify("READY=1", events, { NOTIFY_SOCKET: "/nonexistent/notify.sock" }), false);
  assert.match(warnings[0] ?? "", /could not tell the service manager "READY=1"/);
});
