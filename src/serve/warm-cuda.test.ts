import { test } from "node:test";
import assert from "node:assert/strict";
import { warmCudaWorker, type WarmDriver } from "./warm-cuda.js";

class FakeDriver implements WarmDriver {
  alive = true;
  closed = false;
  inventories = 0;
  constructor(readonly n: number) {}
  async inventory() {
    this.inventories++;
    return {};
  }
  close() {
    this.closed = true;
  }
}

test("one warm worker serves every lease, warmed (inventory) before the first; a dead one is replaced once", async () => {
  const started: FakeDriver[] = [];
  const warm = warmCudaWorker(
    async () => {
      const d = new FakeDriver(started.length);
      started.push(d);
      return d;
    },
    () => {},
  );
  const a = await warm.lease();
  const b = await warm.lease();
  assert.equal(started.length, 1, "started once, at creation");
  assert.equal(a.driver, b.driver);
  assert.equal(started[0]!.inventories, 1, "NVML warmed before any restore asked");
  a.release();
  assert.equal(started[0]!.closed, false, "a lease's release does not close the shared worker");

  started[0]!.alive = false; // killed after a call timed out
  const [c, d] = await Promise.all([warm.lease(), warm.lease()]);
  assert.equal(started.length, 2, "two restores finding it dead start one new worker");
  assert.equal(c.driver, d.driver);
  assert.equal((c.driver as unknown as FakeDriver).n, 1);
  await warm.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(started[1]!.closed, true);
});

test("no GPU driver: the start's failure is logged, and a lease gives its error", async () => {
  const logged: string[] = [];
  const warm = warmCudaWorker<FakeDriver>(
    async () => {
      throw new Error("libcuda.so.1: cannot open shared object file");
    },
    (m) => logged.push(m),
  );
  await assert.rejects(warm.lease(), /libcuda/);
  assert.match(logged[0] ?? "", /no warm CUDA worker: .*libcuda/);
  await warm.close();
});
