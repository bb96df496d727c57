/**
 * Parked instances for real (root, CRIU, the example server, `stasis serve`): park, take (canary), a replacement
 * parked once the address is free, stop of a parked one, hibernate then take, a parked instance of a changed or
 * removed snapshot discarded, and the daemon's stop ending what it holds.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { stasis, tempHome } from "../testing/cli.js";
import { startDaemon as startServe, type Daemon } from "../testing/daemon.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { isRunning, processesNaming, readStat } from "../proc/tree.js";
import { assertValidDocument } from "../testing/schemas.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { park } from "./park.js";
import { endParked, take } from "./take.js";
import { loadConfig } from "../config/config.js";
import { listenersOn, socketOwner } from "../proc/net.js";
import { canaryNoOneGives, capturedAgain, withManifest } from "../testing/manifest.js";

const { home, env, teardown } = tempHome();
let base = "";
let canaryText = "";
let daemon: Daemon | undefined;

async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startDaemon(...args: string[]): Promise<void> {
  daemon = await startServe(env, args);
}

async function stopDaemon(): Promise<void> {
  if (!daemon) return;
  assert.equal(await daemon.stop(), 0, daemon.log());
  daemon = undefined;
}

type Row = { id: string; pid: number; status: string; memory?: { rssBytes: number; pssBytes: number }; dir: string };
async function ps(): Promise<Row[]> {
  const r = await stasis(["ps", "--json"], env);
  assert.equal(r.code, 0, r.output);
  assertValidDocument(r.json, "stasis.ps/v1");
  return r.json.instances as Row[];
}

/** Nothing of instance `row` is left: its tree, the processes naming its folder, the folder itself. */
async function assertGone(row: Row): Promise<void> {
  // Whoever ends it (a stop, the daemon, its supervisor) kills the tree first and removes the folder last.
  const over = async () => !(await isRunning(row.pid)) && !existsSync(row.dir);
  await until(`instance ${row.id} to be gone, its folder too`, over, 5_000);
  assert.deepEqual(await processesNaming(row.dir), [], "no CRIU or unshare left for it");
}

/** Each process of a parked tree is stopped (T), and its server does not answer. */
async function assertStopped(pid: number): Promise<void> {
  assert.equal((await readStat(pid))?.state, "T", "the parked tree is stopped");
  await assert.rejects(httpOk(`${base}/health`, { timeoutMs: 300 }), "a parked server answers nothing");
}

before(async () => {
  const example = await captureExample("pk", env, { startupSeconds: 0.3, canary: "/answer?q=parked" });
  base = example.base;
  canaryText = example.cap.json.manifest.engine.canary.text;
  await startDaemon();
});

after(async () => {
  if (daemon) daemon.child.kill("SIGKILL");
  await teardown(1);
});

test("park, then a restore takes the parked instance: canary matched, without CRIU's time", async () => {
  const plain = await stasis(["restore", "pk", "--json"], env);
  assert.equal(plain.code, 0, plain.output);
  assert.equal(plain.json.taken, undefined);
  assert.equal((await stasis(["stop", plain.json.instance.id], env)).code, 0);

  const parked = await stasis(["park", "pk", "--json"], env);
  assert.equal(parked.code, 0, parked.output);
  assertValidDocument(parked.json, "stasis.park/v1");
  assert.equal(parked.json.parked.length, 1);
  const p = parked.json.parked[0];
  const [row] = await ps();
  assert.equal(row!.id, p.id);
  assert.equal(row!.status, "parked");
  assert.ok(row!.memory!.rssBytes > 0 && row!.memory!.pssBytes > 0, "ps shows the memory it holds");
  await assertStopped(p.pid);

  // One more at the same address is refused, saying why.
  const two = await stasis(["park", "pk", "--count", "2", "--json"], env);
  assert.equal(two.code, 2, two.output);
  assert.match(two.json.error.message, /listening address/);
  // An ordinary restore elsewhere (no daemon) is refused too: the parked tree holds the address.
  const inProcess = await stasis(["restore", "pk", "--json"], { ...env, STASIS_NO_DAEMON: "1" });
  assert.equal(inProcess.json.error.code, "E_ADDRESS_IN_USE", inProcess.output);
  assert.match(inProcess.json.error.message, /parked/);

  const taken = await stasis(["restore", "pk", "--json"], env);
  assert.equal(taken.code, 0, taken.output);
  assertValidDocument(taken.json, "stasis.restore/v1");
  assert.equal(taken.json.taken.id, p.id);
  assert.equal(taken.json.instance.pid, p.pid, "the parked tree itself serves");
  assert.deepEqual(
    taken.json.phases.map((x: { name: string }) => x.name).filter((n: string) => n === "criu-restore"),
    [],
  );
  assert.ok(taken.json.phases.some((x: { name: string }) => x.name === "canary"));
  assert.equal((await httpOk(`${base}/answer?q=parked`)).body, canaryText);
  console.log(
    `# restore ready in ${plain.json.readyMs} ms; from a parked instance in ${taken.json.readyMs} ms (parking took ${p.parkMs} ms)`,
  );
  assert.equal((await ps())[0]!.status, "serving");
});

test("a replacement is parked in the background once the served instance frees the address", async () => {
  const [serving] = await ps();
  assert.equal(serving!.status, "serving");
  assert.equal((await stasis(["stop", serving!.id], env)).code, 0);
  await until("a replacement to be parked", async () => (await ps()).some((r) => r.status === "parked"));
  const [replacement] = await ps();
  assert.notEqual(replacement!.id, serving!.id);
  await assertStopped(replacement!.pid);
  assert.match(daemon!.log(), new RegExp(`parked "pk" as instance ${replacement!.id}`));
});

test("stop of a parked instance leaves nothing, and the daemon does not park it again", async () => {
  const [row] = await ps();
  assert.equal(row!.status, "parked");
  const r = await stasis(["stop", row!.id, "--json"], env);
  assert.equal(r.code, 0, r.output);
  await assertGone(row!);
  await new Promise((res) => setTimeout(res, 2_500)); // longer than the pool's retry interval
  assert.deepEqual(await ps(), []);
});

test("hibernate a serving instance, then a restore wakes it (canary)", async () => {
  const restored = await stasis(["restore", "pk", "--json"], env);
  assert.equal(restored.code, 0, restored.output);
  const id = restored.json.instance.id;
  const hib = await stasis(["hibernate", id, "--json"], env);
  assert.equal(hib.code, 0, hib.output);
  assertValidDocument(hib.json, "stasis.hibernate/v1");
  assert.equal(hib.json.parked.hibernated, true);
  // Where its time went, from its own event stream: the engine's sleep and the tree stopped (no GPU here).
  const names = hib.json.phases.map((x: { name: string }) => x.name);
  assert.ok(names.includes("engine-sleep") && names.includes("stop-tree"), JSON.stringify(hib.json.phases));
  assert.equal((await ps())[0]!.status, "parked");
  await assertStopped(restored.json.instance.pid);

  const woken = await stasis(["restore", "pk", "--json"], env);
  assert.equal(woken.code, 0, woken.output);
  assert.equal(woken.json.taken.id, id);
  assert.equal(woken.json.taken.hibernated, true);
  assert.equal(woken.json.instance.pid, restored.json.instance.pid);
  assert.equal((await httpOk(`${base}/answer?q=parked`)).body, canaryText);
  console.log(`# woken from hibernation in ${woken.json.readyMs} ms (hibernating took ${hib.json.parked.parkMs} ms)`);

  // Only a serving instance hibernates.
  assert.equal((await stasis(["stop", id], env)).code, 0);
  const again = await stasis(["hibernate", id, "--json"], env);
  assert.equal(again.json.error.code, "E_INSTANCE_NOT_FOUND", again.output);
});

test("a parked instance of a snapshot changed since is ended, and the snapshot restored the ordinary way", async () => {
  const parked = await stasis(["park", "pk", "--json"], env);
  assert.equal(parked.code, 0, parked.output);
  const old = (await ps())[0]!;
  // Captured again under the same name: its manifest is another one (here: another capture time).
  await withManifest(home, "pk", capturedAgain, async () => {
    const r = await stasis(["restore", "pk", "--json"], env);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.json.taken, undefined, "not served from the parked instance");
    assert.notEqual(r.json.instance.id, old.id);
    await assertGone(old);
    assert.match(daemon!.log(), /has changed since it was parked/);
    assert.equal((await httpOk(`${base}/answer?q=parked`)).body, canaryText);
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  });
});

test("a take whose canary does not match fails and ends that parked instance", async () => {
  assert.equal((await stasis(["park", "pk", "--count", "0"], env)).code, 0);
  assert.deepEqual(await ps(), []);
  // A snapshot whose canary answer is not what its server says: every take of it must fail.
  try {
    await withManifest(home, "pk", canaryNoOneGives, async () => {
      assert.equal((await stasis(["park", "pk"], env)).code, 0);
      const [row] = await ps();
      const r = await stasis(["restore", "pk", "--json"], env);
      assert.equal(r.json.error.code, "E_CANARY_MISMATCH", r.output);
      await assertGone(row!);
      assert.ok(
        (await ps()).every((x) => x.id !== row!.id && x.status !== "serving"),
        "nothing of it serves",
      );
    });
  } finally {
    // The replacement parked meanwhile is of the manifest changed above: none kept for the next test.
    assert.equal((await stasis(["park", "pk", "--count", "0"], env)).code, 0);
    // The next test parks this snapshot in this process, at its captured port: nothing of this one may hold it.
    const port = Number(new URL(base).port);
    await until(
      `no instance of "pk" and nothing listening at its port ${port}`,
      async () => (await ps()).length === 0 && (await listenersOn(port)).length === 0,
    ).catch(async (err: Error) => {
      // Who still holds it, for whoever reads the failure: the instances left, and each listener's process.
      const held = await Promise.all(
        (await listenersOn(port)).map(async (l) => {
          const pid = await socketOwner(l.inode);
          const cmd = pid ? readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim() : "?";
          return `${l.address}:${l.port} held by pid ${pid ?? "?"} (${cmd})`;
        }),
      );
      throw new Error(`${err.message}; instances: ${JSON.stringify(await ps())}; listening: ${held.join("; ")}`);
    });
  }
});

test("take refuses a parked instance whose snapshot changed since, leaving it to its holder to end", async () => {
  // park() and take() in this process (the daemon holds none of "pk" now): the take-time check itself.
  process.env.STASIS_HOME = home;
  const parked = await park({ name: "pk", verify: "auto", prefetch: "auto", config: loadConfig() }, new Events());
  try {
    await withManifest(home, "pk", capturedAgain, async () => {
      await assert.rejects(take(parked, { readyTimeoutMs: 10_000 }, new Events()), (e: StasisError) => {
        assert.equal(e.code, "E_SNAPSHOT_CHANGED");
        assert.match(e.message, /has changed since it was parked/);
        return true;
      });
      assert.equal((await readStat(parked.record.pid))?.state, "T", "left as it was, stopped");
    });
  } finally {
    await endParked(parked);
    parked.supervisor.release();
  }
  await assertGone({ ...parked.record, status: "parked" });
});

test("stopping the daemon ends its parked instances", async () => {
  assert.equal((await stasis(["park", "pk"], env)).code, 0);
  const [row] = await ps();
  assert.equal(row!.status, "parked");
  await stopDaemon();
  await assertGone(row!);
  assert.deepEqual(await ps(), []);
});

test("a daemon killed outright leaves no parked tree: its supervisor ends it", async () => {
  // --park: one of "pk" parked from the daemon's start.
  await startDaemon("--park", "pk");
  await until("pk to be parked", async () => (await ps()).some((r) => r.status === "parked"));
  const [row] = await ps();
  daemon!.child.kill("SIGKILL");
  await daemon!.exited;
  daemon = undefined;
  await until(
    "the supervisor to end the parked tree",
    async () => !(await isRunning(row!.pid)) && !existsSync(row!.dir),
  );
  await assertGone(row!);
  assert.deepEqual(await ps(), []);
});

test("a parked instance of a removed snapshot is ended, without waiting for a restore", async () => {
  await startDaemon();
  assert.equal((await stasis(["park", "pk"], env)).code, 0);
  const [row] = await ps();
  assert.equal((await stasis(["rm", "pk"], env)).code, 0);
  await until("the daemon to end it", async () => !(await isRunning(row!.pid)), 10_000);
  await assertGone(row!);
  assert.match(daemon!.log(), new RegExp(`parked instance ${row!.id} of "pk": .*; ending it`));
  const r = await stasis(["restore", "pk", "--json"], env);
  assert.equal(r.json.error.code, "E_SNAPSHOT_NOT_FOUND", r.output);
  await stopDaemon();
});
