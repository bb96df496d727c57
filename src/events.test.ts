import { test } from "node:test";
import assert from "node:assert/strict";
import { Events, recordTimeline, type StasisEvent } from "./events.js";

/** A clock the test moves by hand. */
function fakeClock() {
  let now = 1000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test("phase emits start and end with the duration, bytes and rate; a failing phase ends with ok=false", async () => {
  const clock = fakeClock();
  const events = new Events(clock.now);
  const seen: StasisEvent[] = [];
  events.on((e) => seen.push(e));
  const timeline = recordTimeline(events);
  await events.phase(
    "copy",
    async () => {
      clock.advance(500);
      return 2e9;
    },
    (bytes) => ({ bytes }),
  );
  await assert.rejects(
    events.phase("broken", () => {
      clock.advance(10);
      throw new Error("no");
    }),
  );
  assert.deepEqual(
    seen.map((e) => e.type),
    ["phase-start", "phase-end", "phase-start", "phase-end"],
  );
  const [copy, broken] = timeline.phases;
  assert.equal(copy!.ms, 500);
  assert.equal(copy!.bytes, 2e9);
  assert.equal(copy!.gbps, 4);
  assert.equal(broken!.ok, false);
  assert.equal(broken!.startMs, 500);
});

test("overlapping phases keep their own start times", async () => {
  const clock = fakeClock();
  const events = new Events(clock.now);
  const timeline = recordTimeline(events);
  let release!: () => void;
  const background = events.phase("prefetch", () => new Promise<void>((r) => (release = r)));
  clock.advance(100);
  await events.phase("restore", async () => {
    clock.advance(200);
  });
  clock.advance(50);
  release();
  await background;
  const byName = Object.fromEntries(timeline.phases.map((p) => [p.name, p]));
  assert.deepEqual([byName.prefetch!.startMs, byName.prefetch!.endMs], [0, 350]);
  assert.deepEqual([byName.restore!.startMs, byName.restore!.endMs], [100, 300]);
  timeline.stop();
});
