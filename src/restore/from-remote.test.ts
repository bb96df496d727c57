import { test } from "node:test";
import assert from "node:assert/strict";
import type { StagedWeights } from "../engines/weights-stager.js";
import type { FileEntry } from "../store/manifest.js";
import { afterWeights } from "./from-remote.js";

/** A stager that records what it was told, and a transfer whose weights file lands when `land` is called. */
function setup() {
  const told: string[] = [];
  const staged: StagedWeights = {
    ready: async () => ({ reason: "test" }),
    go: () => void told.push("go"),
    stop: () => void told.push("stop"),
  };
  let land!: () => void;
  let fail!: (err: Error) => void;
  const weights = new Promise<void>((res, rej) => ((land = res), (fail = rej)));
  const asked: string[] = [];
  const stream = {
    whole: (which: (f: FileEntry) => boolean = () => true) => {
      const roles = (["image", "weights", "cache"] as const).filter((role) => which({ role, path: "x" } as FileEntry));
      asked.push(roles.join(","));
      return weights;
    },
  };
  return { told, staged, stream, asked, land: () => land(), fail: (e: Error) => fail(e) };
}

const tick = () => new Promise((r) => setImmediate(r));

test("the stager's go waits for the weights file to be whole", async () => {
  const t = setup();
  const gated = afterWeights(t.staged, t.stream);
  assert.deepEqual(t.asked, ["weights"], "it waits on the weights file alone");
  gated.go();
  gated.go();
  await tick();
  assert.deepEqual(t.told, [], "not before the weights are whole");
  t.land();
  await tick();
  assert.deepEqual(t.told, ["go"], "once, when they are");
});

test("a transfer that fails ends the stager instead of letting it read a partial file", async () => {
  const t = setup();
  afterWeights(t.staged, t.stream).go();
  t.fail(new Error("damaged chunk"));
  await tick();
  assert.deepEqual(t.told, ["stop"]);
});

test("a transfer that fails before the restore says go is no unhandled rejection", async () => {
  const t = setup();
  afterWeights(t.staged, t.stream);
  const unhandled: unknown[] = [];
  const note = (err: unknown) => void unhandled.push(err);
  process.on("unhandledRejection", note);
  try {
    t.fail(new Error("damaged chunk"));
    await tick();
    await tick();
    assert.deepEqual(unhandled, []);
    assert.deepEqual(t.told, []);
  } finally {
    process.off("unhandledRejection", note);
  }
});
