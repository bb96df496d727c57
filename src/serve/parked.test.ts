/** The daemon's pool of parked instances, over fake parks and takes (the real ones: restore/park.itest.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError } from "../errors.js";
import type { Parked } from "../restore/park.js";
import type { TakeResult } from "../restore/take.js";
import { ParkedPool, type PoolOps } from "./parked.js";
import { until } from "../testing/wait.js";

let ids = 0;

function fakeParked(snapshot: string, hibernated = false): Parked & { released: boolean } {
  const id = `p${++ids}`;
  const p = {
    record: {
      id,
      snapshot,
      origin: "restore" as const,
      pid: 1,
      startTime: 1,
      url: "u",
      createdAt: "",
      dir: "",
      stdout: "",
      stderr: "",
    },
    snapshot,
    supervisor: { group: () => undefined, release: () => void (p.released = true) },
    parkMs: 5,
    released: false,
    ...(hibernated ? { hibernated: { engineState: {}, engineDir: "" } } : {}),
  };
  return p;
}

/** A pool over fakes: parks resolve when `parks` says (default: at once), ends are recorded, the address is free
 *  when `free` says. */
function fakePool(
  opts: {
    free?: () => boolean;
    gate?: Promise<void>;
    failPark?: boolean;
    stale?: (p: Parked) => string | undefined;
  } = {},
) {
  const ended: string[] = [];
  const parkedNames: string[] = [];
  const logs: string[] = [];
  const ops: PoolOps = {
    async park(name, signal) {
      parkedNames.push(name);
      await opts.gate;
      if (signal.aborted) throw new StasisError("E_INTERRUPTED", "aborted");
      if (opts.failPark) throw new StasisError("E_CRIU_RESTORE", "criu restore failed");
      return fakeParked(name);
    },
    async end(p) {
      ended.push(p.record.id);
      p.supervisor.release();
    },
    async hibernate(id) {
      const p = fakeParked("h");
      p.record.id = id;
      return { ...p, hibernated: { engineState: {}, engineDir: "" } };
    },
    addressFree: async () => opts.free?.() ?? true,
    stale: async (p) => opts.stale?.(p),
    log: (m) => logs.push(m),
  };
  // A retry interval no test waits for: replenish() is called by hand.
  const pool = new ParkedPool(ops, 3_600_000);
  return { pool, ended, parkedNames, logs };
}

const served = (p: Parked): Promise<TakeResult> =>
  Promise.resolve({
    instance: p.record,
    snapshot: p.snapshot,
    readyMs: 1,
    phases: [],
    reads: { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 },
    taken: { id: p.record.id, hibernated: p.hibernated !== undefined, parkMs: p.parkMs },
  });

/** The ordinary restore a take falls back to; here nothing (undefined). */
const none = (): Promise<undefined> => Promise.resolve(undefined);

test("park: setTarget parks one and waits for it; --count 0 ends it", async () => {
  const { pool, ended } = fakePool();
  const parked = await pool.setTarget("a", 1);
  assert.equal(parked.length, 1);
  assert.equal(pool.target("a"), 1);
  await pool.setTarget("a", 0);
  assert.deepEqual(ended, [parked[0]!.record.id]);
  assert.equal(pool.list("a").length, 0);
  await pool.close();
});

test("park: more than one of a snapshot is refused (they would share its address), as is a bad count", async () => {
  const { pool, parkedNames } = fakePool();
  await assert.rejects(
    pool.setTarget("a", 2),
    (e: StasisError) => e.code === "E_USAGE" && /listening address/.test(e.message),
  );
  await assert.rejects(pool.setTarget("a", 1.5), (e: StasisError) => e.code === "E_USAGE");
  assert.deepEqual(parkedNames, [], "nothing parked");
  await pool.close();
});

test("park: a failed first park is the caller's error, and nothing is kept", async () => {
  const { pool } = fakePool({ failPark: true });
  await assert.rejects(pool.setTarget("a", 1), (e: StasisError) => e.code === "E_CRIU_RESTORE");
  assert.equal(pool.list().length, 0);
  await pool.close();
});

test("take: serves from the parked instance, then parks a replacement once the address is free", async () => {
  let free = false;
  const { pool, parkedNames } = fakePool({ free: () => free });
  const [first] = await pool.setTarget("a", 1);
  const r = await pool.take("a", served, none);
  assert.equal(r?.taken.id, first!.record.id);
  assert.equal(pool.list("a").length, 0);
  // The taken instance serves at the address: no replacement yet.
  await pool.replenish("a");
  assert.deepEqual(parkedNames, ["a"]);
  free = true;
  await pool.replenish("a");
  assert.deepEqual(parkedNames, ["a", "a"]);
  assert.equal(pool.list("a").length, 1);
  assert.notEqual(pool.list("a")[0]!.record.id, first!.record.id);
  await pool.close();
});

test("take: none parked -> instead (the daemon restores the ordinary way)", async () => {
  const { pool } = fakePool();
  assert.equal(await pool.take("a", served, none), undefined);
  await pool.close();
});

test("take: a parked instance of a removed or changed snapshot is ended, not served", async () => {
  const { pool, ended, logs } = fakePool({ free: () => false });
  const [p] = await pool.setTarget("a", 1);
  const stale = () =>
    Promise.reject(new StasisError("E_SNAPSHOT_CHANGED", `parked instance ${p!.record.id} is not served: changed`));
  assert.equal(await pool.take("a", stale, none), undefined);
  assert.deepEqual(ended, [p!.record.id]);
  assert.ok(
    logs.some((l) => /not served/.test(l)),
    logs.join("\n"),
  );
  await pool.close();
});

test("take: the restore instead of a stale parked instance runs before its replacement is parked", async () => {
  // The address is free once the stale one is ended: a replacement begun first would take it from the restore.
  const { pool, parkedNames } = fakePool({ free: () => true });
  await pool.setTarget("a", 1);
  const stale = () => Promise.reject(new StasisError("E_SNAPSHOT_CHANGED", "changed"));
  const parksWhileRestoring: number[] = [];
  const r = await pool.take("a", stale, async () => {
    await new Promise((res) => setTimeout(res, 20));
    parksWhileRestoring.push(parkedNames.length);
    return "restored";
  });
  assert.equal(r, "restored");
  assert.deepEqual(parksWhileRestoring, [1], "no replacement park had begun while the restore ran");
  await until("the replacement park after it", () => parkedNames.length === 2);
  await pool.close();
});

test("take: a failed take's error is thrown and the instance is not kept (the take ended it)", async () => {
  const { pool, ended } = fakePool({ free: () => false });
  await pool.setTarget("a", 1);
  const broken = () => Promise.reject(new StasisError("E_CANARY_MISMATCH", "canary differs"));
  await assert.rejects(pool.take("a", broken, none), (e: StasisError) => e.code === "E_CANARY_MISMATCH");
  assert.equal(pool.list("a").length, 0);
  assert.deepEqual(ended, [], "ending it was the take's");
  await pool.close();
});

test("take: waits for a park of the snapshot under way", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const { pool } = fakePool({ gate });
  const parking = pool.setTarget("a", 1);
  const taking = pool.take("a", served, none);
  open();
  await parking;
  assert.ok((await taking)?.taken, "served from the park that was under way");
  await pool.close();
});

test("take: a hibernated instance is served first; stopping one does not lower the count", async () => {
  const { pool } = fakePool({ free: () => false });
  await pool.setTarget("h", 1);
  const hib = await pool.hibernate("hib1");
  assert.equal(pool.list("h").length, 2);
  const r = await pool.take("h", served, none);
  assert.equal(r?.taken.id, hib.record.id);
  assert.equal(r?.taken.hibernated, true);
  const again = await pool.hibernate("hib2");
  assert.equal(await pool.stop(again.record.id), true);
  assert.equal(pool.target("h"), 1);
  await pool.close();
});

test("stop: ends a parked instance and keeps one fewer of its snapshot parked; unknown ids are not the pool's", async () => {
  const { pool, ended } = fakePool();
  const [p] = await pool.setTarget("a", 1);
  assert.equal(await pool.stop("nope"), false);
  assert.equal(await pool.stop(p!.record.id), true);
  assert.deepEqual(ended, [p!.record.id]);
  assert.equal(pool.target("a"), 0);
  await pool.replenish("a");
  assert.equal(pool.list("a").length, 0, "not parked again");
  await pool.close();
});

test("close: ends every parked instance, and a park under way is ended when it finishes", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const { pool, ended } = fakePool({ gate });
  const parking = pool.setTarget("b", 1).catch((e: Error) => e);
  const closing = pool.close();
  open();
  await closing;
  assert.ok((await parking) instanceof Error, "the caller hears the park did not finish");
  assert.equal(pool.list().length, 0);
  await assert.rejects(pool.setTarget("a", 1), (e: StasisError) => e.code === "E_DAEMON");
  assert.deepEqual(ended, [], "the aborted park ended itself (nothing was handed to the pool)");
});

test("close: a park that finishes after close is ended, not kept", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const ops = fakePool({ gate });
  // This park ignores the abort (as CRIU past its point of no return would) and finishes.
  const { pool, ended } = ops;
  const orig = (pool as unknown as { ops: PoolOps }).ops.park;
  (pool as unknown as { ops: PoolOps }).ops.park = async (name) => {
    await gate;
    return orig(name, new AbortController().signal);
  };
  const parking = pool.setTarget("c", 1).catch((e: Error) => e);
  const closing = pool.close();
  open();
  await closing;
  await parking;
  assert.equal(ended.length, 1);
  assert.equal(pool.list().length, 0);
});

test("park --count 0 while a replacement is being parked: none is left parked once it answers", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const { pool, ended } = fakePool({ gate });
  (pool as unknown as { targets: Map<string, number> }).targets.set("a", 1);
  const replacing = pool.replenish("a");
  let answered = false;
  const lowered = pool.setTarget("a", 0).then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(answered, false, "the new count waits for the park under way");
  open();
  await lowered;
  assert.equal(pool.list("a").length, 0);
  assert.equal(ended.length, 1, "the replacement was ended before the answer");
  await replacing;
  await pool.close();
});

test("sweep: a parked instance whose snapshot was removed or changed is ended without waiting for a take", async () => {
  let gone = false;
  const { pool, ended, logs } = fakePool({ free: () => false, stale: () => (gone ? "snapshot removed" : undefined) });
  const [p] = await pool.setTarget("a", 1);
  await pool.sweep();
  assert.equal(pool.list("a").length, 1, "kept while its snapshot is there");
  gone = true;
  await pool.sweep();
  assert.equal(pool.list("a").length, 0);
  assert.deepEqual(ended, [p!.record.id]);
  assert.ok(
    logs.some((l) => /snapshot removed; ending it/.test(l)),
    logs.join("\n"),
  );
  assert.equal(pool.target("a"), 1, "the count stays: a snapshot captured again is parked again");
  await pool.close();
});
