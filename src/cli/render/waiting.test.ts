import { test } from "node:test";
import assert from "node:assert/strict";
import { Events } from "../../events.js";
import { attachRenderer } from "./progress.js";

function stream(isTTY: boolean, columns = 60) {
  const written: string[] = [];
  return {
    s: { isTTY, columns, write: (x: string) => (written.push(x), true) } as unknown as NodeJS.WriteStream,
    written,
  };
}

const wait = (events: Events, elapsedMs: number, last: string) =>
  events.emit({
    type: "waiting",
    phase: "ready",
    t: elapsedMs,
    elapsedMs,
    url: "http://127.0.0.1:8000/health",
    last,
    logPath: "/var/lib/stasis/instances/abc/stderr.log",
  });

test("on a terminal the readiness wait is one line, redrawn in place and cut to the width", () => {
  const events = new Events();
  const { s, written } = stream(true, 64);
  const detach = attachRenderer(events, { quiet: false, stream: s });
  wait(events, 1000, "connect ECONNREFUSED 127.0.0.1:8000");
  wait(events, 2000, "HTTP 503");
  detach();
  const drawn = written.filter((w) => w.startsWith("ready:"));
  assert.equal(drawn.length, 2);
  assert.ok(
    drawn.every((l) => l.length <= 63 && l.endsWith("…")),
    drawn.join("\n"),
  );
  assert.match(drawn[1]!, /^ready: waiting 2 s for http:\/\/127\.0\.0\.1:8000\/health \(last: H/);
  assert.ok(written.includes("\r\x1b[K"), "the line is cleared before it is redrawn");
  assert.ok(!written.join("").includes("\n"), "no line is added for the wait");
});

test("piped (or quiet, as with --json) the wait prints nothing", () => {
  for (const [tty, quiet] of [
    [false, false],
    [true, true],
  ] as const) {
    const events = new Events();
    const { s, written } = stream(tty);
    const detach = attachRenderer(events, { quiet, stream: s });
    wait(events, 1000, "HTTP 503");
    detach();
    assert.deepEqual(written, []);
  }
});
