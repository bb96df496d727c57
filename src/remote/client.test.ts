import { test } from "node:test";
import assert from "node:assert/strict";
import { credentialSource, readBody, remoteError } from "./client.js";
import { StasisError } from "../errors.js";
import { distinctChunks } from "./push.js";
import { checkChunkPlan, sameFiles } from "./pull.js";
import { combine } from "../store/digest.js";
import { sampleManifest } from "../testing/fixtures.js";

const at = {
  endpoint: "http://127.0.0.1:9",
  credentialSource: "the environment (AWS_ACCESS_KEY_ID)",
  bucket: "b",
  what: "read",
  key: "k",
};

test("a refusal names the endpoint and where the credentials came from", () => {
  const e = remoteError(
    Object.assign(new Error("denied"), { name: "Unknown", $metadata: { httpStatusCode: 403 } }),
    at,
  );
  assert.equal(e.code, "E_REMOTE_AUTH");
  assert.match(
    e.message,
    /http:\/\/127\.0\.0\.1:9 refused the credentials from the environment \(AWS_ACCESS_KEY_ID\) \(HTTP 403\)/,
  );
  assert.ok(e.hint);
});

test("a missing bucket and an unreachable endpoint are told apart", () => {
  assert.equal(remoteError(Object.assign(new Error("x"), { name: "NoSuchBucket" }), at).code, "E_REMOTE_NOT_FOUND");
  const down = remoteError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }), at);
  assert.equal(down.code, "E_REMOTE");
  assert.match(down.message, /cannot reach http:\/\/127\.0\.0\.1:9/);
});

test("the credential source is the environment's keys, else the profile's file", () => {
  assert.equal(credentialSource({ AWS_ACCESS_KEY_ID: "k" }), "the environment (AWS_ACCESS_KEY_ID)");
  assert.equal(credentialSource({ AWS_PROFILE: "fleet", AWS_SHARED_CREDENTIALS_FILE: "/c" }), 'profile "fleet" of /c');
});

test("distinct chunks: a chunk that repeats (zero pages, one weights file in two places) is sent once", () => {
  const m = sampleManifest();
  const [a, b] = ["a".repeat(64), "b".repeat(64)];
  m.files = [
    { path: "images/pages-1.img", role: "image", size: 250, sha256: a, chunkSize: 100, chunks: [a, b, a] },
    { path: "weights.bin", role: "weights", size: 100, sha256: b, chunkSize: 100, chunks: [b] },
  ];
  const d = distinctChunks(m);
  assert.deepEqual([...d.keys()], [a, b]);
  assert.deepEqual(
    d.get(a)!.map((r) => [r.offset, r.length]),
    [
      [0, 100],
      [200, 50],
    ],
  );
  assert.deepEqual(
    d.get(b)!.map((r) => r.path),
    ["images/pages-1.img", "weights.bin"],
  );
});

test("sameFiles: the same files under another snapshot name match; a changed digest does not", () => {
  const a = sampleManifest();
  const b = { ...sampleManifest(), name: "other" };
  assert.ok(sameFiles(a, b));
  b.files = [{ ...b.files[0]!, sha256: "c".repeat(64) }];
  assert.ok(!sameFiles(a, b));
});

test("an object's body is read whole at its announced length; a short one is an error, not a short chunk", async () => {
  async function* parts(...xs: string[]) {
    for (const x of xs) yield Buffer.from(x);
  }
  assert.equal((await readBody(parts("ab", "cd"), 4, "k")).toString(), "abcd");
  assert.equal((await readBody(parts("ab", "c"), undefined, "k")).toString(), "abc");
  await assert.rejects(
    readBody(parts("ab"), 4, "chunks/x"),
    (e: StasisError) => e.code === "E_REMOTE" && /2 bytes of chunks\/x, 4 announced/.test(e.message),
  );
});

test("a manifest whose chunks do not cover a file, or do not make up its digest, is refused before a pull", () => {
  const m = sampleManifest();
  const [a, b] = ["a".repeat(64), "b".repeat(64)];
  m.files = [
    { path: "images/pages-1.img", role: "image", size: 150, sha256: combine([a, b]), chunkSize: 100, chunks: [a, b] },
  ];
  assert.equal(checkChunkPlan(m, "s3://b/p/s"), m);
  const short = { ...m, files: [{ ...m.files[0]!, chunks: [a], sha256: combine([a]) }] };
  assert.throws(
    () => checkChunkPlan(short, "s3://b/p/s"),
    (e: StasisError) =>
      e.code === "E_MANIFEST_INVALID" && /1 chunks of 100 bytes for 150 bytes \(2 expected\)/.test(e.message),
  );
  const forged = { ...m, files: [{ ...m.files[0]!, sha256: a }] };
  assert.throws(
    () => checkChunkPlan(forged, "s3://b/p/s"),
    (e: StasisError) => e.code === "E_MANIFEST_INVALID" && /not that of its chunks/.test(e.message),
  );
});
