import { test } from "node:test";
import assert from "node:assert/strict";
import { niceTicks, rateLabel, speedupLabel, tickLabel } from "./ticks.js";

/** True when x is 1, 2 or 5 times a power of ten. */
const round125 = (x: number) => {
  const m = x / 10 ** Math.floor(Math.log10(x) + 1e-12);
  return [1, 2, 5].some((k) => Math.abs(m - k) < 1e-9);
};

test("axis ticks land on round values (1/2/5 x 10^n), not on quarters of the span (307 ms, 9.77 s)", () => {
  for (const [end, step, max] of [
    [614, 100, 700],
    [1230, 200, 1400],
    [4440, 1000, 5000],
    [39090, 5000, 40000],
    [25270, 5000, 30000],
    [8, 1, 8],
    [0.35, 0.05, 0.35],
  ] as const) {
    const t = niceTicks(end);
    assert.equal(t.step, step, `step for ${end}`);
    assert.equal(t.max, max, `last tick for ${end}`);
    assert.ok(t.max >= end, "the axis reaches the end");
    assert.ok(t.ticks.length - 1 <= 8 && t.ticks.length >= 2, `${t.ticks.length - 1} intervals for ${end}`);
    assert.ok(round125(t.step), `${t.step} is 1, 2 or 5 x 10^n`);
    t.ticks.forEach((v, i) => assert.equal(v, Number((i * step).toFixed(6)), `tick ${i} of ${end}`));
  }
});

test("every span from 1 ms to 10 min gets round ticks and a last tick within one step of its end", () => {
  for (let end = 1; end < 600_000; end *= 1.37) {
    const t = niceTicks(end);
    assert.ok(round125(t.step), `${t.step}`);
    assert.ok(t.max >= end && t.max - end < t.step + 1e-9, `${end}: ${t.max}`);
    assert.ok(t.ticks.length - 1 <= 8, `${end}: ${t.ticks.length - 1} intervals`);
  }
});

test("a span of nothing (no phases, NaN) still gets an axis", () => {
  for (const end of [0, -5, NaN, Infinity]) assert.deepEqual(niceTicks(end).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test("tick labels: milliseconds under a second, seconds with the decimals the step needs", () => {
  assert.equal(tickLabel(600, 100, 700), "600 ms");
  assert.equal(tickLabel(1400, 200, 1400), "1.4 s");
  assert.equal(tickLabel(1000, 200, 1400), "1.0 s");
  assert.equal(tickLabel(35000, 5000, 40000), "35 s");
  assert.equal(tickLabel(1500, 500, 4000), "1.5 s");
  assert.equal(tickLabel(1050, 50, 1200), "1.05 s");
  assert.equal(tickLabel(0, 1000, 5000), "0 s");
});

test("speed-up labels read like 63.7x", () => {
  assert.equal(speedupLabel(39090, 614), "63.7x");
  assert.equal(speedupLabel(39090, 4440), "8.80x");
  assert.equal(speedupLabel(1000, 952), "1.05x");
  assert.equal(speedupLabel(39090, 150), "261x");
  assert.equal(speedupLabel(1000, 2000), "0.50x");
  assert.equal(speedupLabel(1000, 0), "");
});

test("no rate for a phase under 10 ms (3 ms of adopt-weights made 2025 GB/s), MB/s under 1 GB/s", () => {
  assert.equal(rateLabel(3, 2025.1), undefined);
  assert.equal(rateLabel(9.9, 12), undefined);
  assert.equal(rateLabel(121, 53.04), "53.0 GB/s");
  assert.equal(rateLabel(2310, 0.967), "967 MB/s");
  assert.equal(rateLabel(3140, 0.0041), "4.1 MB/s");
  assert.equal(rateLabel(100, undefined), undefined);
  assert.equal(rateLabel(100, 0), undefined);
});
