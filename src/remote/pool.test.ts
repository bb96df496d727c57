import { test } from "node:test";
import assert from "node:assert/strict";
import { eachLimit } from "./_pool.js";

test("eachLimit runs at most `limit` at once and every item once", async () => {
  let running = 0;
  let most = 0;
  const seen: number[] = [];
  await eachLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 5));
    seen.push(n);
    running--;
  });
  assert.equal(most, 3);
  assert.deepEqual(seen.sort(), [1, 2, 3, 4, 5, 6, 7]);
});

test("after a failure no new work starts, and the failure is thrown once the running ones settle", async () => {
  const started: number[] = [];
  let settled = 0;
  await assert.rejects(
    eachLimit([1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await new Promise((r) => setTimeout(r, n === 1 ? 1 : 20));
      settled++;
      if (n === 1) throw new Error("one failed");
    }),
    /one failed/,
  );
  assert.deepEqual(started, [1, 2]);
  assert.equal(settled, 2, "the running item finished before the failure was thrown");
});
