import { test } from "node:test";
import assert from "node:assert/strict";
import { CleanupStack } from "./cleanup.js";

test("unwind gives resources back newest first, each once", async () => {
  const order: string[] = [];
  const stack = new CleanupStack(() => assert.fail("no warning expected"));
  stack.defer("claim", () => order.push("claim"));
  stack.defer("supervisor", async () => order.push("supervisor"));
  stack.defer("tree", () => order.push("tree"));
  assert.deepEqual(stack.held, ["claim", "supervisor", "tree"]);
  await stack.unwind();
  await stack.unwind();
  assert.deepEqual(order, ["tree", "supervisor", "claim"]);
  assert.deepEqual(stack.held, []);
});

test("an undo that throws is logged and the others still run; unwind does not throw", async () => {
  const order: string[] = [];
  const warnings: string[] = [];
  const stack = new CleanupStack((m) => warnings.push(m));
  stack.defer("record", () => order.push("record"));
  stack.defer("staging folder", () => {
    throw new Error("EBUSY");
  });
  stack.defer("tree", async () => {
    order.push("tree");
    throw new Error("gone already");
  });
  await stack.unwind();
  assert.deepEqual(order, ["tree", "record"]);
  assert.deepEqual(warnings, ["could not give back tree: gone already", "could not give back staging folder: EBUSY"]);
});

test("an undo that hangs is bounded: the unwinding goes on without it, saying so", async () => {
  const order: string[] = [];
  const warnings: string[] = [];
  const stack = new CleanupStack((m) => warnings.push(m), 50);
  stack.defer("record", () => order.push("record"));
  stack.defer("stuck job", () => new Promise(() => undefined));
  const t0 = Date.now();
  await stack.unwind();
  assert.ok(Date.now() - t0 < 2_000);
  assert.deepEqual(order, ["record"]);
  assert.deepEqual(warnings, ["giving back stuck job took over 50 ms; going on without it"]);
});

test("keep() hands a resource over: it is off the stack and never undone", async () => {
  const order: string[] = [];
  const stack = new CleanupStack(() => undefined);
  stack.defer("claim", () => order.push("claim"));
  const tree = stack.defer("tree", () => order.push("tree"));
  stack.defer("lease", () => order.push("lease"));
  tree.keep();
  tree.keep(); // a second keep changes nothing
  await stack.unwind();
  assert.deepEqual(order, ["lease", "claim"]);
});

test("now() gives back early, once; a resource taken after the unwinding is given back at once", async () => {
  const order: string[] = [];
  const stack = new CleanupStack(() => undefined);
  stack.defer("claim", () => order.push("claim"));
  const remaps = stack.defer("link-remap files", () => order.push("remaps"));
  await remaps.now();
  await remaps.now();
  assert.deepEqual(order, ["remaps"]);
  await stack.unwind();
  assert.deepEqual(order, ["remaps", "claim"]);
  const late = stack.defer("late lease", () => order.push("late"));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ["remaps", "claim", "late"]);
  late.keep();
});
