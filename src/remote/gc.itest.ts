/**
 * `stasis gc s3://...` against a real S3-compatible server (versitygw, scripts/s3-server.sh): a chunk no snapshot
 * uses removed (a dry run first, and a grace period); every chunk of the snapshots there and of a push under way
 * kept (the snapshot pulls back whole); and a push run while gc runs again and again, with no grace period, loses
 * nothing. (A push that died is removed once its index is an hour old: gc.test.ts, with a clock.)
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { stasis, tempHome, MAIN } from "../testing/cli.js";
import { startS3Server, type S3Server } from "../testing/s3-server.js";
import { captureExample } from "../testing/example.js";
import { openRemote, type Remote } from "./client.js";
import { keys } from "./url.js";
import { assertValidDocument } from "../testing/schemas.js";

const { env: homeEnv, teardown } = tempHome();
let s3: S3Server;
let env: NodeJS.ProcessEnv;
let remote: Remote;
const where = { bucket: "", prefix: "fleet" };

before(async () => {
  s3 = await startS3Server();
  env = { ...homeEnv, ...s3.env, AWS_PROFILE: undefined, AWS_SESSION_TOKEN: undefined };
  where.bucket = s3.bucket;
  remote = await openRemote(where, { env: { ...process.env, ...env } });
  await captureExample("slow", env, { canary: "/ballast", serverArgs: ["--ballast-mb", "96"] });
  const pushed = await stasis(["push", "slow", `s3://${s3.bucket}/fleet`, "--quiet"], env);
  assert.equal(pushed.code, 0, pushed.output);
});

after(async () => {
  await teardown(1);
  await s3?.stop();
});

test("gc removes chunks no snapshot uses, after a dry run; a push under way and the snapshot stay whole", async () => {
  const store = `s3://${s3.bucket}/fleet`;
  const orphan = randomBytes(4096);
  const digest = createHash("sha256").update(orphan).digest("hex");
  await remote.put(keys.chunk(where, digest), orphan);
  // A push under way (its index, no manifest yet): what it lists stays, whatever the grace period.
  const pushing = randomBytes(4096);
  const pushingDigest = createHash("sha256").update(pushing).digest("hex");
  await remote.put(keys.chunk(where, pushingDigest), pushing);
  const index = JSON.stringify({ files: [{ chunks: [pushingDigest] }] });
  await remote.put(keys.index(where, "pushing"), Buffer.from(index));
  const before = (await remote.list(keys.chunk(where, ""))).length;

  const young = await stasis(["gc", store, "--json"], env);
  assert.equal(young.code, 0, young.output);
  assertValidDocument(young.json, "stasis.gc/v1");
  assert.equal(young.json.removed, 0, "within the default grace period nothing goes");
  assert.equal(young.json.young, 1, "the orphan (the push under way holds its own chunk)");

  const dry = await stasis(["gc", store, "--grace-hours", "0", "--json"], env);
  assert.equal(dry.code, 0, dry.output);
  assert.deepEqual([dry.json.dryRun, dry.json.removed, dry.json.abandoned], [true, 1, []]);
  assert.equal((await remote.list(keys.chunk(where, ""))).length, before, "a dry run removes nothing");

  const r = await stasis(["gc", store, "--grace-hours", "0", "--yes", "--json"], env);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.json.removed, 1);
  assert.equal(await remote.head(keys.chunk(where, digest)), undefined);
  assert.equal(await remote.head(keys.chunk(where, pushingDigest)), 4096);
  assert.equal((await remote.list(keys.chunk(where, ""))).length, before - 1);
  const pulled = await stasis(["pull", `${store}/slow`, "back", "--json"], env);
  assert.equal(pulled.code, 0, pulled.output);
  assert.equal((await stasis(["inspect", "back", "--verify"], env)).code, 0);
});

test("a push while gc runs again and again (no grace period) loses none of its chunks", async () => {
  const store = `s3://${s3.bucket}/busy`;
  const push = spawn(process.execPath, [MAIN, "push", "slow", store, "--quiet"], {
    env: { ...process.env, ...env, STASIS_REMOTE_CONCURRENCY: "1" },
    stdio: "ignore",
  });
  const pushed = new Promise<number | null>((resolve) => push.on("exit", resolve));
  let done = false;
  void pushed.then(() => (done = true));
  let runs = 0;
  while (!done) {
    const r = await stasis(["gc", store, "--grace-hours", "0", "--yes", "--json"], env);
    assert.equal(r.code, 0, r.output);
    assert.equal(r.json.removed, 0, `gc run ${runs + 1} removed a chunk of the push under way`);
    runs++;
  }
  assert.equal(await pushed, 0);
  assert.ok(runs >= 2, `gc ran ${runs} times during the push`);
  const pulled = await stasis(["pull", `${store}/slow`, "busy", "--json"], env);
  assert.equal(pulled.code, 0, pulled.output);
  assert.equal((await stasis(["inspect", "busy", "--verify"], env)).code, 0);
});
