/** The swap's order and its failures, with both sides faked (the real ones: swap.itest.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Events, type StasisEvent } from "../events.js";
import { StasisError } from "../errors.js";
import { swap } from "./swap.js";
import type { Parked } from "./park.js";
import type { RestoreResult } from "./restore.js";

const parked = { snapshot: "llama", parkMs: 12 } as unknown as Parked;
const restored = { readyMs: 5, snapshot: "qwen" } as unknown as RestoreResult;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(): { events: Events; warnings: string[] } {
  const events = new Events();
  const warnings: string[] = [];
  events.on((e: StasisEvent) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
  return { events, warnings };
}

test("both start at once; the restore's wake waits for the sleep, not for the rest of the hibernate", async () => {
  const order: string[] = [];
  const { events } = recorder();
  const r = await swap(
    {
      off: async (handOver) => {
        order.push("sleep");
        await tick(20);
        handOver();
        order.push("checkpoint begins");
        await tick(40);
        order.push("hibernated");
        return parked;
      },
      on: async (gpuFree) => {
        order.push("resume, CUDA restore");
        await gpuFree;
        order.push("wake");
        await tick(10);
        order.push("restored");
        return restored;
      },
    },
    events,
    "a1",
  );
  assert.deepEqual(order, ["sleep", "resume, CUDA restore", "checkpoint begins", "wake", "restored", "hibernated"]);
  assert.equal(r.restored, restored);
  assert.equal(r.off.hibernated, parked);
  assert.equal(r.off.ended, undefined);
  assert.ok(r.handOverMs >= 15 && r.readyMs >= r.handOverMs + 5, JSON.stringify(r));
});

test("a hibernate that fails before the sleep ends fails the swap, and the restore never wakes", async () => {
  let woken = 0;
  let undone: unknown;
  const refused = new StasisError("E_ENGINE", "the server did not report sleeping");
  await assert.rejects(
    swap(
      {
        off: async () => {
          await tick(5);
          throw refused;
        },
        on: async (gpuFree) => {
          try {
            await gpuFree;
          } catch (err) {
            undone = err; // a take unwinds here: its instance ended
            throw err;
          }
          woken++;
          return restored;
        },
      },
      new Events(),
      "a1",
    ),
    (e) => e === refused,
  );
  assert.equal(woken, 0);
  assert.equal(undone, refused);
});

test("a hibernate that ends without handing over fails the restore waiting on it", async () => {
  await assert.rejects(
    swap({ off: async () => parked, on: async (gpuFree) => (await gpuFree, restored) }, new Events(), "a1"),
    (e: StasisError) => e.code === "E_INTERNAL" && /without its engine going to sleep/.test(e.message),
  );
});

test("a restore that fails fails the swap with its code, saying the other is hibernated and how to wake it", async () => {
  await assert.rejects(
    swap(
      {
        off: async (handOver) => (handOver(), parked),
        on: async () => {
          throw new StasisError("E_CANARY_MISMATCH", "the canary answered differently", { hint: "capture it again" });
        },
      },
      new Events(),
      "a1",
    ),
    (e: StasisError) => {
      assert.equal(e.code, "E_CANARY_MISMATCH");
      assert.match(e.message, /the canary answered differently; instance a1 is hibernated: a restore of "llama" wakes/);
      assert.equal(e.hint, "capture it again");
      return true;
    },
  );
});

test("a hibernate that fails after the sleep: the other serves, and the answer says the instance was ended", async () => {
  const { events, warnings } = recorder();
  const r = await swap(
    {
      off: async (handOver) => {
        handOver();
        await tick(10);
        throw new StasisError("E_CUDA", "cuCheckpointProcessCheckpoint failed");
      },
      on: async () => restored,
    },
    events,
    "a1",
  );
  assert.equal(r.restored, restored);
  assert.equal(r.off.hibernated, undefined);
  assert.match(r.off.ended ?? "", /cuCheckpointProcessCheckpoint failed/);
  assert.match(warnings.join("\n"), /instance a1 was ended, not hibernated/);
});

test("both sides failing: the restore's error, saying the instance was ended too", async () => {
  await assert.rejects(
    swap(
      {
        off: async (handOver) => {
          handOver();
          throw new StasisError("E_CUDA", "checkpoint failed");
        },
        on: async () => {
          throw new StasisError("E_READY_TIMEOUT", "not ready in 120 s");
        },
      },
      new Events(),
      "a1",
    ),
    (e: StasisError) =>
      e.code === "E_READY_TIMEOUT" && /instance a1 was ended: its hibernate failed too/.test(e.message),
  );
});
