/**
 * Round numbers for the bench's pictures: axis ticks at 1, 2 or 5 x 10^n, and the labels drawn beside bars.
 *
 * @example
 *   niceTicks(614)    // { step: 100, max: 700, ticks: [0, 100, ..., 700] }
 *   tickLabel(1500, 500, 4000) // "1.5 s"
 *   speedupLabel(39090, 614)   // "63.7x"
 */

/** At most this many intervals on an axis: more and the labels run into each other. */
const MAX_INTERVALS = 8;

/** Ticks from 0 to the first round value at or past `end`, `step` apart, with at most 8 intervals. */
export function niceTicks(end: number): { step: number; max: number; ticks: number[] } {
  const span = Number.isFinite(end) && end > 0 ? end : 1;
  let step = 0;
  // The smallest 1/2/5 x 10^n step that covers the span in few enough intervals.
  for (let exp = Math.floor(Math.log10(span / MAX_INTERVALS)); step === 0; exp++) {
    for (const m of [1, 2, 5]) {
      const s = m * 10 ** exp;
      if (Math.ceil(span / s - 1e-9) <= MAX_INTERVALS) {
        step = s;
        break;
      }
    }
  }
  const n = Math.max(1, Math.ceil(span / step - 1e-9));
  // Rounded to the step's own digits, so that 0.1 * 3 reads as 0.3 and not 0.30000000000000004.
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const ticks = Array.from({ length: n + 1 }, (_, i) => Number((i * step).toFixed(digits)));
  return { step, max: ticks.at(-1)!, ticks };
}

/** A tick's label in milliseconds or, on an axis that reaches a second, in seconds with as many decimals as the
 *  step needs (500 ms steps: "1.5 s"; 1 s steps: "2 s"). */
export function tickLabel(ms: number, stepMs: number, axisMaxMs: number): string {
  if (ms === 0) return axisMaxMs < 1000 ? "0 ms" : "0 s";
  if (axisMaxMs < 1000) return `${ms.toFixed(0)} ms`;
  const decimals = Math.max(0, Math.ceil(-Math.log10(stepMs / 1000) - 1e-9));
  return `${(ms / 1000).toFixed(decimals)} s`;
}

/** How many times faster `ms` is than `baseMs`, to three significant figures ("63.7x", "1.05x", "254x"). */
export function speedupLabel(baseMs: number, ms: number): string {
  const x = baseMs / ms;
  if (!Number.isFinite(x) || x <= 0) return "";
  return `${x >= 100 ? x.toFixed(0) : x >= 1 ? x.toPrecision(3) : x.toFixed(2)}x`;
}

/** Phases shorter than this get no rate: a few bytes' worth of milliseconds makes one up (2025 GB/s). */
export const MIN_RATE_MS = 10;

/** A phase's rate as it reads best: GB/s from 1 GB/s up, MB/s below; none for a phase under 10 ms. */
export function rateLabel(ms: number, gbps: number | undefined): string | undefined {
  if (gbps === undefined || !Number.isFinite(gbps) || gbps <= 0 || ms < MIN_RATE_MS) return undefined;
  if (gbps >= 1) return `${gbps.toFixed(1)} GB/s`;
  const mbps = gbps * 1000;
  return `${mbps >= 10 ? mbps.toFixed(0) : mbps.toFixed(1)} MB/s`;
}
