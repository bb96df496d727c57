/**
 * Swaps for real (root, CRIU, two example servers at their own addresses, `stasis serve`): the GPU handed from one
 * serving instance to a parked snapshot and back (the hibernated one woken), each canary checked; what is refused
 * before anything is touched; a swap whose restore fails leaves the other hibernated; two hibernates of one instance
 * at once, one refused; a hibernate that fails after the hand-over ends its instance rather than give it back.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stasis, tempHome } from "../testing/cli.js";
import { startDaemon, type Daemon } from "../testing/daemon.js";
import { api } from "../testing/daemon-api.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { isRunning, processesNaming, readStat } from "../proc/tree.js";
import { assertValidDocument } from "../testing/schemas.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { hibernate } from "./hibernate.js";
import { canaryNoOneGives, withManifest } from "../testing/manifest.js";

const { home, env, teardown } = tempHome();
const A = { base: "", canary: "" };
const B = { base: "", canary: "" };
let daemon: Daemon | undefined;

type Row = { id: string; pid: number; status: string; snapshot: string; dir: string };
async function ps(): Promise<Row[]> {
  const r = await stasis(["ps", "--json"], env);
  assert.equal(r.code, 0, r.output);
  return r.json.instances as Row[];
}

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function answers(side: typeof A): Promise<void> {
  assert.equal((await httpOk(`${side.base}/answer?q=swap`)).body, side.canary);
}

before(async () => {
  for (const [name, side] of [
    ["sa", A],
    ["sb", B],
  ] as const) {
    const ex = await captureExample(name, env, { startupSeconds: 0.3, canary: "/answer?q=swap" });
    side.base = ex.base;
    side.canary = ex.cap.json.manifest.engine.canary.text;
  }
  daemon = await startDaemon(env);
});

after(async () => {
  if (daemon) assert.equal(await daemon.stop(), 0, daemon.log());
  await teardown(1);
});

test("swap: the GPU from a serving instance to a parked snapshot and back, each canary checked", async () => {
  const a = await stasis(["restore", "sa", "--json"], env);
  assert.equal(a.code, 0, a.output);
  assert.equal((await stasis(["park", "sb"], env)).code, 0);
  const parkedB = (await ps()).find((r) => r.snapshot === "sb")!;

  const there = await stasis(["swap", a.json.instance.id, "sb", "--json"], env);
  assert.equal(there.code, 0, there.output);
  assertValidDocument(there.json, "stasis.swap/v1");
  assert.equal(there.json.restored.taken.id, parkedB.id, "the parked instance of sb serves");
  assert.equal(there.json.off.hibernated.id, a.json.instance.id);
  const names = there.json.off.phases.map((x: { name: string }) => x.name);
  assert.ok(names.includes("engine-sleep") && names.includes("stop-tree"), JSON.stringify(names));
  assert.ok(there.json.handOverMs <= there.json.readyMs, JSON.stringify(there.json));
  // The take started at once and waited, before the wake, for the engine going off to sleep.
  const taken = there.json.restored.phases.map((x: { name: string }) => x.name);
  assert.ok(taken.indexOf("resume") < taken.indexOf("gpu-wait"), JSON.stringify(taken));
  assert.ok(taken.indexOf("gpu-wait") < taken.indexOf("canary"), JSON.stringify(taken));
  await answers(B);
  assert.equal((await readStat(a.json.instance.pid))?.state, "T", "the instance gone off is stopped");

  // Back, as a user reads it: the hibernated instance of sa is woken, sb hibernated.
  const b = there.json.restored.instance.id;
  const back = await stasis(["swap", b, "sa"], env);
  assert.equal(back.code, 0, back.output);
  assert.match(back.output, new RegExp(`swapped: "sa" serving as instance ${a.json.instance.id} at .*canary matched`));
  assert.match(back.output, new RegExp(`instance ${b} hibernated in .*engine-sleep .*; a restore of "sb" wakes it`));
  assert.equal((await ps()).find((r) => r.snapshot === "sa")?.pid, a.json.instance.pid);
  await answers(A);
  const rows = await ps();
  assert.deepEqual(
    rows.map((r) => `${r.snapshot} ${r.status}`).sort(),
    ["sa serving", "sb parked"],
    "sa serves, sb is hibernated",
  );
  console.log(
    `# swap sa -> sb ready in ${there.json.readyMs} ms (the engine going off asleep at ${there.json.handOverMs} ms)`,
  );
});

test("a swap is refused before anything is touched: the instance's own snapshot, no such snapshot or instance", async () => {
  const a = (await ps()).find((r) => r.status === "serving")!;
  const same = await stasis(["swap", a.id, "sa", "--json"], env);
  assert.equal(same.json.error.code, "E_USAGE", same.output);
  assert.match(same.json.error.message, /serves "sa" already/);
  const missing = await stasis(["swap", a.id, "nope", "--json"], env);
  assert.equal(missing.json.error.code, "E_SNAPSHOT_NOT_FOUND", missing.output);
  const nobody = await stasis(["swap", "ffffffff", "sb", "--json"], env);
  assert.equal(nobody.json.error.code, "E_INSTANCE_NOT_FOUND", nobody.output);
  assert.equal((await ps()).find((r) => r.id === a.id)?.status, "serving");
  await answers(A);
});

test("a swap whose restore fails fails with its error, and the instance gone off is hibernated", async () => {
  // None of sb kept parked from here (its hibernated instance stays): no replacement parks beside what is checked.
  assert.equal((await stasis(["park", "sb", "--count", "0"], env)).code, 0);
  const a = (await ps()).find((r) => r.status === "serving")!;
  const hibernatedB = (await ps()).find((r) => r.snapshot === "sb")!;
  await withManifest(home, "sb", canaryNoOneGives, async () => {
    const r = await stasis(["swap", a.id, "sb", "--json"], env);
    assert.ok(r.code !== 0, r.output);
    assert.match(r.json.error.message, new RegExp(`instance ${a.id} is hibernated: a restore of "sa" wakes it`));
    // The hibernated sb was of the manifest before: the take refuses it as changed, the ordinary restore's canary
    // then fails; neither leaves anything of sb.
    await until("nothing of sb left", async () => !(await isRunning(hibernatedB.pid)));
  });
  assert.deepEqual(
    (await ps()).map((r) => `${r.snapshot} ${r.status}`),
    ["sa parked"],
  );
  const woken = await stasis(["restore", "sa", "--json"], env);
  assert.equal(woken.code, 0, woken.output);
  assert.equal(woken.json.taken.id, a.id);
  await answers(A);
});

test("a swap to a snapshot with nothing parked restores it, CRIU beside the other's sleep, its wake after", async () => {
  const a = (await ps()).find((r) => r.status === "serving")!;
  assert.equal((await ps()).filter((r) => r.snapshot === "sb").length, 0, "nothing of sb parked or hibernated");
  const r = await stasis(["swap", a.id, "sb", "--json"], env);
  assert.equal(r.code, 0, r.output);
  assertValidDocument(r.json, "stasis.swap/v1");
  assert.equal(r.json.restored.taken, undefined, "an ordinary restore");
  const names = r.json.restored.phases.map((x: { name: string }) => x.name);
  assert.ok(names.includes("criu-restore"), JSON.stringify(names));
  assert.ok(
    names.indexOf("gpu-wait") >= 0 && names.indexOf("gpu-wait") < names.indexOf("canary"),
    JSON.stringify(names),
  );
  await answers(B);
  assert.equal(r.json.off.hibernated.id, a.id);
  // Back to sa for the tests below, and nothing of sb kept.
  const back = await stasis(["swap", r.json.restored.instance.id, "sa", "--json"], env);
  assert.equal(back.code, 0, back.output);
  assert.equal(back.json.restored.taken.id, a.id);
  assert.equal((await stasis(["stop", r.json.restored.instance.id], env)).code, 0);
  await answers(A);
});

test("two hibernates of one instance at once: one takes it off the GPU, the other is refused", async () => {
  const a = (await ps()).find((r) => r.status === "serving")!;
  const at = { socket: join(home, "stasisd.sock") };
  const both = await Promise.all([1, 2].map(() => api(at, "POST", "/v1/hibernate", { id: a.id })));
  assert.deepEqual(both.map((r) => r.status).sort(), [200, 400], JSON.stringify(both.map((r) => r.json)));
  const refused = both.find((r) => r.status === 400)!.json.error;
  assert.equal(refused.code, "E_USAGE");
  assert.match(refused.message, /being hibernated already|only a serving instance can hibernate/);
  console.log(`# the other hibernate: ${refused.message}`);
  const woken = await stasis(["restore", "sa", "--json"], env);
  assert.equal(woken.code, 0, woken.output);
  assert.equal(woken.json.taken.id, a.id, "the one hibernate's instance, woken");
  await answers(A);
});

test("a hibernate that fails after its hand-over ends the instance instead of giving it back", async () => {
  const a = (await ps()).find((r) => r.status === "serving")!;
  process.env.STASIS_HOME = home;
  let handedOver = false;
  await assert.rejects(
    hibernate(a.id, new Events(), {
      handOver: () => {
        handedOver = true;
        process.kill(a.pid, "SIGKILL"); // the server dies between its sleep and its checkpoint
      },
    }),
    (e: StasisError) => e.code === "E_SERVER_EXITED",
  );
  assert.ok(handedOver);
  await until("its record and folder to be gone", async () => !existsSync(a.dir));
  assert.deepEqual(await processesNaming(a.dir), []);
  assert.equal((await ps()).length, 0);
});
