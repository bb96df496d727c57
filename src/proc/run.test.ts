import { test } from "node:test";
import assert from "node:assert/strict";
import { run } from "./run.js";

test("a cancellation that came before the child started still reaches it: killed at once, not run to the end", async () => {
  const controller = new AbortController();
  controller.abort(new Error("interrupted"));
  const started = Date.now();
  const out = await run("sleep", ["30"], { signal: controller.signal });
  assert.equal(out.signal, "SIGKILL");
  assert.ok(Date.now() - started < 5_000, `ended after ${Date.now() - started} ms`);
});

test("a cancellation while the child runs kills its process group", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("interrupted")), 100);
  const out = await run("sh", ["-c", "sleep 30 & wait"], { signal: controller.signal });
  assert.equal(out.signal, "SIGKILL");
  assert.ok(out.ms < 5_000, `ended after ${out.ms} ms`);
});
