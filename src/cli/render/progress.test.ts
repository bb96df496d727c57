import { test } from "node:test";
import assert from "node:assert/strict";
import { progressLine } from "./progress.js";

const ev = (t: number, done: number, total = 4e9) => ({
  type: "progress" as const,
  phase: "prefetch-test",
  t,
  done,
  total,
  unit: "bytes" as const,
});

test("progressLine shows bytes, GB/s and ETA, with no ETA before a rate is known", () => {
  assert.match(progressLine(ev(0, 0)), /0 B\/3\.7 GiB {2}0\.00 GB\/s {2}ETA -$/);
  assert.match(progressLine(ev(1000, 1e9)), /1\.00 GB\/s {2}ETA 3\.0 s$/);
  assert.match(progressLine(ev(2000, 3e9)), /1\.50 GB\/s {2}ETA 0\.7 s$/);
});

test("progressLine measures a phase that starts again afresh", () => {
  progressLine(ev(0, 0));
  progressLine(ev(1000, 4e9));
  progressLine(ev(50_000, 0)); // the same phase name, run again much later
  assert.match(progressLine(ev(51_000, 2e9)), /2\.00 GB\/s/);
});
