import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonDocument } from "./json.js";

test("a --json document names its schema first, durations in 0.1 ms named *Ms, other fractions rounded", () => {
  const doc = jsonDocument("restore", {
    readyMs: 786.123456,
    phases: [{ name: "criu-restore", startMs: 0.04, endMs: 412.345, ms: 412.3049, gbps: 5.123456789, bytes: 10 }],
    ratio: 1 / 3,
    count: 7,
    absent: undefined,
  });
  assert.deepEqual(doc, {
    schema: "stasis.restore/v1",
    readyMs: 786.1,
    phases: [{ name: "criu-restore", startMs: 0, endMs: 412.3, durationMs: 412.3, gbps: 5.123, bytes: 10 }],
    ratio: 0.333,
    count: 7,
  });
  assert.equal(Object.keys(doc)[0], "schema");
});
