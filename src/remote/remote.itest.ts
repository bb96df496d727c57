/**
 * Snapshots across machines through a real S3-compatible server (versitygw over a folder, scripts/s3-server.sh):
 * a captured example server pushed, removed here, pulled back and restored with its canary (its 200 MiB of random
 * memory) matching; a second pull served from the chunk cache; a pull killed half-way resumed; a damaged chunk in
 * the bucket refused; wrong credentials and a snapshot of another machine refused before any chunk moves.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killWhen, stasis, tempHome } from "../testing/cli.js";
import { startS3Server, type S3Server } from "../testing/s3-server.js";
import { httpOk } from "../engines/http-client.js";
import { captureExample } from "../testing/example.js";
import { openRemote } from "./client.js";
import { keys } from "./url.js";
import { combine } from "../store/digest.js";
import { assertValidDocument } from "../testing/schemas.js";

const { env: homeEnv, home, teardown } = tempHome();
let s3: S3Server;
let env: NodeJS.ProcessEnv;
let store: string;
let canary: string;
const cacheDir = join(home, "cache", "chunks");

before(async () => {
  s3 = await startS3Server();
  env = { ...homeEnv, ...s3.env, AWS_PROFILE: undefined, AWS_SESSION_TOKEN: undefined };
  store = `s3://${s3.bucket}/fleet`;
  const { cap } = await captureExample("slow", env, { canary: "/ballast", serverArgs: ["--ballast-mb", "200"] });
  canary = cap.json.manifest.engine.canary.text;
});

after(async () => {
  await teardown(1);
  await s3?.stop();
});

test("push sends each distinct chunk once, a second push none, and ls lists the snapshot in the bucket", async () => {
  const first = await stasis(["push", "slow", store, "--json"], env);
  assert.equal(first.code, 0, first.output);
  assertValidDocument(first.json, "stasis.push/v1");
  assert.ok(first.json.chunks >= 4, `${first.json.chunks} chunks for 200 MiB of memory`);
  assert.equal(first.json.uploaded, first.json.chunks);
  const again = await stasis(["push", "slow", store, "--json"], env);
  assert.equal(again.code, 0, again.output);
  assert.equal(again.json.uploaded, 0);
  assert.equal(again.json.skipped, first.json.chunks);
  const ls = await stasis(["ls", store, "--json"], env);
  assert.equal(ls.code, 0, ls.output);
  assertValidDocument(ls.json, "stasis.ls/v1");
  assert.deepEqual(
    ls.json.snapshots.map((s: { name: string; url: string }) => [s.name, s.url]),
    [["slow", `${store}/slow`]],
  );
});

test("a snapshot removed here is pulled back whole, root's alone, verified, and restores with its memory", async () => {
  assert.equal((await stasis(["rm", "slow"], env)).code, 0);
  const pulled = await stasis(["pull", `${store}/slow`, "--json"], env);
  assert.equal(pulled.code, 0, pulled.output);
  assertValidDocument(pulled.json, "stasis.pull/v1");
  assert.equal(pulled.json.fetched + pulled.json.fromCache, pulled.json.chunks);
  const dir = pulled.json.snapshotDir as string;
  for (const p of walk(dir)) {
    const mode = statSync(p).mode & 0o777;
    assert.equal(mode & 0o077, 0, `${p} has mode ${mode.toString(8)}`);
  }
  const verify = await stasis(["inspect", "slow", "--verify", "--json"], env);
  assert.equal(verify.code, 0, verify.output);
  const res = await stasis(["restore", "slow", "--json"], env);
  assert.equal(res.code, 0, res.output);
  assert.equal((await httpOk(`${res.json.instance.url}/ballast`)).body, canary);
  assert.equal((await stasis(["stop", res.json.instance.id], env)).code, 0);
});

test("a second pull of the same chunks (another name) fetches none: they come from the node's cache", async () => {
  const r = await stasis(["pull", `${store}/slow`, "slow-copy", "--json"], env);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.json.fetched, 0);
  assert.equal(r.json.fromCache, r.json.chunks);
  assert.equal((await stasis(["inspect", "slow-copy", "--verify"], env)).code, 0);
});

test("a pull killed half-way leaves no snapshot, and the next pull resumes from the chunks it fetched", async () => {
  rmSync(cacheDir, { recursive: true, force: true });
  const slowly = { ...env, STASIS_REMOTE_CONCURRENCY: "1" };
  await killWhen(["pull", `${store}/slow`, "killed", "--quiet"], slowly, () => chunksCached().length >= 2);
  const had = chunksCached().length;
  assert.ok(had >= 2, `the pull had fetched ${had} chunks`);
  const ls = await stasis(["ls", "--json"], env);
  assert.ok(!ls.json.snapshots.some((s: { name: string }) => s.name === "killed"), "no half snapshot in the store");
  const r = await stasis(["pull", `${store}/slow`, "killed", "--json"], env);
  assert.equal(r.code, 0, r.output);
  assert.ok(r.json.fromCache >= had, `resumed with ${r.json.fromCache} chunks from the cache, ${had} were there`);
  assert.ok(r.json.fetched < r.json.chunks);
  assert.equal((await stasis(["inspect", "killed", "--verify"], env)).code, 0);
});

test("a damaged chunk in the bucket is refused by name, no snapshot appears, the cache keeps good chunks", async () => {
  rmSync(cacheDir, { recursive: true, force: true });
  const remote = await openRemote({ bucket: s3.bucket, prefix: "fleet" }, { env: { ...process.env, ...env } });
  const m = JSON.parse(readFileSync(join(home, "snapshots", "slow", "manifest.json"), "utf8"));
  const big = m.files.find((f: { chunks: string[] }) => f.chunks.length > 1);
  const digest = big.chunks[0] as string;
  const key = keys.chunk({ bucket: s3.bucket, prefix: "fleet" }, digest);
  const good = await remote.get(key);
  const bad = Buffer.from(good);
  bad[12345] = bad[12345]! ^ 0xff;
  await remote.put(key, bad);
  try {
    const r = await stasis(["pull", `${store}/slow`, "damaged", "--json"], env);
    assert.notEqual(r.code, 0);
    assert.equal(r.json.error.code, "E_DIGEST_MISMATCH", r.output);
    assert.match(r.json.error.message, new RegExp(digest));
    assert.ok(
      !(await stasis(["ls", "--json"], env)).json.snapshots.some((s: { name: string }) => s.name === "damaged"),
    );
    assert.ok(!chunksCached().includes(digest), "the damaged chunk was not cached");
    for (const name of chunksCached()) {
      assert.equal(
        createHash("sha256")
          .update(readFileSync(join(cacheDir, name)))
          .digest("hex"),
        name,
      );
    }
  } finally {
    await remote.put(key, good);
  }
});

test("wrong credentials: a clear error naming the endpoint and where the credentials came from", async () => {
  const r = await stasis(["pull", `${store}/slow`, "wrong", "--json"], {
    ...env,
    AWS_SECRET_ACCESS_KEY: "not-the-secret",
  });
  assert.equal(r.code, 5, r.output);
  assert.equal(r.json.error.code, "E_REMOTE_AUTH");
  assert.match(r.json.error.message, new RegExp(s3.endpoint.replace(/[.]/g, "\\.")));
  assert.match(r.json.error.message, /the environment \(AWS_ACCESS_KEY_ID\)/);
});

test("credentials from a profile of a credentials file (no keys in the environment); a bad one names it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-aws-"));
  try {
    const file = join(dir, "credentials");
    writeFileSync(
      file,
      `[fleet]\naws_access_key_id = ${s3.env.AWS_ACCESS_KEY_ID}\n` +
        `aws_secret_access_key = ${s3.env.AWS_SECRET_ACCESS_KEY}\n` +
        `[stale]\naws_access_key_id = ${s3.env.AWS_ACCESS_KEY_ID}\naws_secret_access_key = not-the-secret\n`,
      { mode: 0o600 },
    );
    const profileEnv = {
      ...env,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SHARED_CREDENTIALS_FILE: file,
      AWS_CONFIG_FILE: join(dir, "config"),
    };
    const ok = await stasis(["ls", store, "--json"], { ...profileEnv, AWS_PROFILE: "fleet" });
    assert.equal(ok.code, 0, ok.output);
    assert.ok(ok.json.snapshots.some((s: { name: string }) => s.name === "slow"));
    const bad = await stasis(["ls", store, "--json"], { ...profileEnv, AWS_PROFILE: "stale" });
    assert.equal(bad.json.error.code, "E_REMOTE_AUTH", bad.output);
    assert.ok(bad.json.error.message.includes(`profile "stale" of ${file}`), bad.json.error.message);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a snapshot of another machine is refused before any chunk moves (its chunks need not even exist)", async () => {
  const remote = await openRemote({ bucket: s3.bucket, prefix: "fleet" }, { env: { ...process.env, ...env } });
  const m = JSON.parse(readFileSync(join(home, "snapshots", "slow", "manifest.json"), "utf8"));
  m.fingerprint.kernel = "0.0.1-elsewhere";
  m.files[0].chunks[0] = "0".repeat(64); // not in the bucket: only a check after the transfer would find it
  m.files[0].sha256 = combine(m.files[0].chunks);
  await remote.put(keys.manifest({ bucket: s3.bucket, prefix: "fleet" }, "alien"), Buffer.from(JSON.stringify(m)));
  const r = await stasis(["pull", `${store}/alien`, "--json"], env);
  assert.equal(r.json.error.code, "E_FINGERPRINT_MISMATCH", r.output);
  assert.match(r.json.error.message, /0\.0\.1-elsewhere/);
});

test("restore s3://.../NAME pulls the snapshot the store lacks, then restores; later ones pull nothing", async () => {
  assert.equal((await stasis(["rm", "slow"], env)).code, 0);
  const first = await stasis(["restore", `${store}/slow`, "--json"], env);
  assert.equal(first.code, 0, first.output);
  assertValidDocument(first.json, "stasis.restore/v1");
  assert.equal(first.json.pull.pulled, true);
  assert.equal(first.json.reads.bytesVerified, 0, "the pull checked every chunk: the restore hashes nothing again");
  assert.equal((await httpOk(`${first.json.instance.url}/ballast`)).body, canary);
  assert.equal((await stasis(["stop", first.json.instance.id], env)).code, 0);
  const again = await stasis(["restore", `${store}/slow`, "--json"], env);
  assert.equal(again.code, 0, again.output);
  assert.equal(again.json.pull.pulled, false);
  assert.equal((await httpOk(`${again.json.instance.url}/ballast`)).body, canary);
  assert.equal((await stasis(["stop", again.json.instance.id], env)).code, 0);
});

test("a pull the disk cannot hold is refused before any chunk moves, saying how much it needs", async () => {
  const small = mkdtempSync(join(tmpdir(), "stasis-small-home-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", small]);
  try {
    const r = await stasis(["pull", `${store}/slow`, "--json"], { ...env, STASIS_HOME: small });
    assert.equal(r.json.error.code, "E_NO_SPACE", r.output);
    assert.match(r.json.error.message, /this pull needs/);
    assert.deepEqual(readdirSync(join(small, "snapshots")), [], "no staging folder left");
  } finally {
    execFileSync("umount", [small]);
    rmSync(small, { recursive: true, force: true });
  }
});

function chunksCached(): string[] {
  try {
    return readdirSync(cacheDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
}

function walk(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
