import { test } from "node:test";
import assert from "node:assert/strict";
import { renderTimeline } from "./timeline.js";

test("a phase that starts after the ready time (the working set's record) does not crash the timeline", () => {
  const phase = (name: string, startMs: number, endMs: number) => ({
    name,
    startMs,
    endMs,
    ms: endMs - startMs,
    ok: true,
  });
  const text = renderTimeline(
    [phase("open", 0, 10), phase("canary", 150, 180), phase("record-working-set", 200, 260)],
    180,
  );
  assert.match(text, /record-working-set/);
  for (const line of text.split("\n").slice(1)) assert.match(line, /▇/, line);
});
