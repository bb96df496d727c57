import { test } from "node:test";
import assert from "node:assert/strict";
import { fitLine, table, terminalWidth } from "../../text.js";
import { waitingLine } from "./progress.js";

test("lines are cut to the terminal's width, and never when piped", () => {
  assert.equal(fitLine("abcdefghij", 8), "abcdef…");
  assert.equal(fitLine("abc", 8), "abc");
  assert.equal(fitLine("abcdefghij", undefined), "abcdefghij");
  assert.equal(terminalWidth({ isTTY: true, columns: 80 }), 80);
  assert.equal(terminalWidth({ isTTY: false, columns: 80 }), undefined, "piped: no width");
  const rows = [
    ["name", "command"],
    ["a", "python3 -m some.very.long.module serve --with many --arguments"],
  ];
  assert.deepEqual(
    table(rows, 30)
      .split("\n")
      .map((l) => l.length),
    [13, 29],
  );
  assert.equal(
    table(rows, undefined).split("\n")[1],
    "a     python3 -m some.very.long.module serve --with many --arguments",
  );
});

test("the readiness wait reads as one line: elapsed, the last answer, the server's log", () => {
  const line = waitingLine({
    type: "waiting",
    phase: "ready",
    t: 0,
    elapsedMs: 12_400,
    url: "http://127.0.0.1:8000/health",
    last: "HTTP 503",
    logPath: "/h/i/stderr.log",
  });
  assert.equal(
    line,
    "ready: waiting 12 s for http://127.0.0.1:8000/health (last: HTTP 503); server log: /h/i/stderr.log",
  );
});
