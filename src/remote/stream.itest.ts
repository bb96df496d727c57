/**
 * `stasis restore s3://...` while the snapshot arrives, against a real S3-compatible server (versitygw,
 * scripts/s3-server.sh): a captured example server with a weights file of its own (random bytes the restore
 * fetches after CRIU's images) pushed, removed here, and restored from the store with its canary matching, CRIU
 * starting before the weights had arrived; a restore killed mid-transfer leaving nothing, then resumed from the
 * node's cache; a damaged chunk of the weights (fetched while CRIU restores): a clear error, nothing running,
 * no snapshot, only good chunks in the cache.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killWhen, stasis, tempHome } from "../testing/cli.js";
import { startS3Server, type S3Server } from "../testing/s3-server.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { openRemote } from "./client.js";
import { keys } from "./url.js";
import { combine, DIGEST_CHUNK } from "../store/digest.js";
import { assertValidDocument } from "../testing/schemas.js";

const { env: homeEnv, home, teardown } = tempHome();
let s3: S3Server;
let env: NodeJS.ProcessEnv;
let store: string;
let canary: string;
let serverUrl: string;
let weights: { digests: string[] };
const cacheDir = join(home, "cache", "chunks");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

before(async () => {
  s3 = await startS3Server();
  env = { ...homeEnv, ...s3.env, AWS_PROFILE: undefined, AWS_SESSION_TOKEN: undefined };
  store = `s3://${s3.bucket}/fleet`;
  const { cap, base } = await captureExample("slow", env, { canary: "/ballast", serverArgs: ["--ballast-mb", "128"] });
  canary = cap.json.manifest.engine.canary.text;
  serverUrl = base;
  // A weights file as an engine's snapshot has one (this server reads none): 160 MiB the restore needs after CRIU.
  const dir = join(home, "snapshots", "slow");
  const data = randomBytes(160 * 1024 * 1024);
  mkdirSync(join(dir, "weights"), { mode: 0o700 });
  writeFileSync(join(dir, "weights", "model.bin"), data, { mode: 0o600 });
  const digests: string[] = [];
  for (let at = 0; at < data.length; at += DIGEST_CHUNK) digests.push(sha(data.subarray(at, at + DIGEST_CHUNK)));
  weights = { digests };
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const entry = { path: "weights/model.bin", role: "weights", size: data.length, sha256: combine(digests) };
  m.files.push({ ...entry, chunkSize: DIGEST_CHUNK, chunks: digests });
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m, null, 2) + "\n");
  const pushed = await stasis(["push", "slow", store, "--json"], env);
  assert.equal(pushed.code, 0, pushed.output);
  assert.equal((await stasis(["rm", "slow"], env)).code, 0);
});

after(async () => {
  await teardown(1);
  await s3?.stop();
});

test("restore s3:// runs CRIU before the weights arrive, serves with its canary, and keeps the snapshot", async () => {
  const r = await stasis(["restore", `${store}/slow`, "--json"], env);
  assert.equal(r.code, 0, r.output);
  assertValidDocument(r.json, "stasis.restore/v1");
  try {
    assert.equal(r.json.pull.pulled, true);
    assert.equal((await httpOk(`${r.json.instance.url}/ballast`)).body, canary);
    const criu = r.json.phases.find((p: { name: string }) => p.name === "criu-restore");
    const waited = r.json.phases.some((p: { name: string }) => p.name === "await-images");
    assert.ok(waited, "the restore waited for the images");
    assert.ok(
      criu.startMs < r.json.pull.streamed.allFilesMs,
      `CRIU started at ${criu.startMs} ms, the last file was whole at ${r.json.pull.streamed.allFilesMs} ms`,
    );
    assert.equal(r.json.reads.bytesVerified, 0, "every chunk was checked as it landed: nothing hashed again");
    const verify = await stasis(["inspect", "slow", "--verify", "--json"], env);
    assert.equal(verify.code, 0, verify.output);
  } finally {
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  }
});

test("a streaming restore killed mid-transfer leaves nothing running, no snapshot; run again it resumes", async () => {
  assert.equal((await stasis(["rm", "slow"], env)).code, 0);
  rmSync(cacheDir, { recursive: true, force: true });
  const slowly = { ...env, STASIS_REMOTE_CONCURRENCY: "1", STASIS_REMOTE_PART_MB: "0" };
  await killWhen(["restore", `${store}/slow`, "--quiet"], slowly, () => chunksCached().length >= 2);
  const had = chunksCached().length;
  assert.ok(had >= 2, `the restore had fetched ${had} chunks`);
  await nothingLeft("killed");
  const r = await stasis(["restore", `${store}/slow`, "--json"], env);
  assert.equal(r.code, 0, r.output);
  try {
    const from = r.json.pull.fromCache;
    assert.ok(from >= had, `resumed with ${from} chunks from the cache, ${had} there`);
    assert.ok(r.json.pull.fetched < r.json.pull.chunks);
    assert.equal((await httpOk(`${r.json.instance.url}/ballast`)).body, canary);
  } finally {
    assert.equal((await stasis(["stop", r.json.instance.id], env)).code, 0);
  }
});

test("a damaged weights chunk (after CRIU's images) stops the restore: named, nothing left, cache good", async () => {
  assert.equal((await stasis(["rm", "slow"], env)).code, 0);
  rmSync(cacheDir, { recursive: true, force: true });
  const remote = await openRemote({ bucket: s3.bucket, prefix: "fleet" }, { env: { ...process.env, ...env } });
  const digest = weights.digests.at(-1)!;
  const key = keys.chunk({ bucket: s3.bucket, prefix: "fleet" }, digest);
  const good = await remote.get(key);
  const bad = Buffer.from(good);
  bad[4321] = bad[4321]! ^ 0xff;
  await remote.put(key, bad);
  try {
    const r = await stasis(["restore", `${store}/slow`, "--json"], env);
    assert.notEqual(r.code, 0, r.output);
    assert.equal(r.json.error.code, "E_DIGEST_MISMATCH", r.output);
    assert.match(r.json.error.message, new RegExp(digest));
    await nothingLeft("damaged");
    assert.ok(!chunksCached().includes(digest), "the damaged chunk was not cached");
    for (const name of chunksCached()) assert.equal(sha(readFileSync(join(cacheDir, name))), name);
  } finally {
    await remote.put(key, good);
  }
});

/** No instance recorded or serving, no snapshot or staging folder in the store (a killed one's supervisor ends it). */
async function nothingLeft(what: string) {
  let ps: { instances: unknown[] } = { instances: [] };
  for (let i = 0; i < 100; i++) {
    ps = (await stasis(["ps", "--all", "--json"], env)).json;
    if (ps.instances.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(ps.instances, [], `${what}: no instance left`);
  await assert.rejects(httpOk(`${serverUrl}/health`), `${what}: nothing serves at ${serverUrl}`);
  const ls = await stasis(["ls", "--json"], env);
  assert.deepEqual(ls.json.snapshots, [], `${what}: no snapshot`);
  const staging = readdirSync(join(home, "snapshots")).filter((n) => n.startsWith(".staging"));
  assert.deepEqual(staging, [], "no staging folder");
}

function chunksCached(): string[] {
  try {
    return readdirSync(cacheDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
}
