import { test } from "node:test";
import assert from "node:assert/strict";
import { Events, recordTimeline, type StasisEvent } from "../events.js";
import { StasisError } from "../errors.js";
import { allInOrder, runPipeline } from "./pipeline.js";

test("steps are phases on the event stream, under their own names", async () => {
  const events = new Events();
  const timeline = recordTimeline(events);
  const out = await runPipeline(events, {}, async (p) => {
    const a = await p.step("open", () => 2);
    const b = await p.step(
      "criu-restore",
      async () => a * 21,
      (v) => ({ bytes: v }),
    );
    return b;
  });
  assert.equal(out, 42);
  assert.deepEqual(
    timeline.phases.map((ph) => [ph.name, ph.ok, ph.bytes]),
    [
      ["open", true, undefined],
      ["criu-restore", true, 42],
    ],
  );
});

test("a failing step unwinds the stack newest first and the caller sees the step's error", async () => {
  const events = new Events();
  const order: string[] = [];
  const err = new StasisError("E_CRIU_RESTORE", "criu failed");
  await assert.rejects(
    runPipeline(events, {}, async (p) => {
      await p.step("open", () => {
        p.defer("supervisor", () => order.push("supervisor"));
        p.defer("claim", () => order.push("claim"));
      });
      p.defer("tree", () => {
        order.push("tree");
        throw new Error("kill failed"); // logged, not thrown over the step's error
      });
      await p.step("cuda-init", () => {
        throw err;
      });
      order.push("not reached");
    }),
    (e) => e === err,
  );
  assert.deepEqual(order, ["tree", "claim", "supervisor"]);
});

test("success hands kept resources over and gives back the rest", async () => {
  const events = new Events();
  const warnings: string[] = [];
  events.on((e: StasisEvent) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
  const order: string[] = [];
  const pid = await runPipeline(events, {}, async (p) => {
    const claim = p.defer("claim", () => order.push("claim"));
    p.defer("cuda worker", () => order.push("cuda worker"));
    const tree = p.defer("tree", () => order.push("tree"));
    claim.keep();
    tree.keep();
    return 1234;
  });
  assert.equal(pid, 1234);
  assert.deepEqual(order, ["cuda worker"]);
  assert.deepEqual(warnings, []);
});

test("an interrupt: the next step is refused with E_INTERRUPTED and what was taken is given back", async () => {
  const events = new Events();
  const abort = new AbortController();
  const order: string[] = [];
  await assert.rejects(
    runPipeline(events, { signal: abort.signal }, async (p) => {
      await p.step("open", () => p.defer("claim", () => order.push("claim")));
      abort.abort();
      await p.step("criu-restore", () => order.push("criu ran"));
    }),
    (e: unknown) => e instanceof StasisError && e.code === "E_INTERRUPTED",
  );
  assert.deepEqual(order, ["claim"]);
});

test("steps side by side: their values in order; the first failure in order, once every one has settled", async () => {
  const later = (ms: number, v: number) => new Promise<number>((r) => setTimeout(() => r(v), ms));
  assert.deepEqual(await allInOrder(later(20, 1), later(1, 2)), [1, 2]);
  const settled: string[] = [];
  const fail = (ms: number, what: string) =>
    new Promise<never>((_, reject) =>
      setTimeout(() => {
        settled.push(what);
        reject(new Error(what));
      }, ms),
    );
  const slow = later(40, 3).then((v) => (settled.push("slow"), v));
  await assert.rejects(allInOrder(fail(30, "first"), fail(1, "second"), slow), /^Error: first$/);
  assert.deepEqual(settled, ["second", "first", "slow"], "the slow one had settled before the error came");
});
