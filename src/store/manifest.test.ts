import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifest } from "./manifest.js";
import { sampleManifest } from "../testing/fixtures.js";
import { StasisError } from "../errors.js";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as StasisError).code + ": " + (err as StasisError).message;
  }
  return "no error";
}

test("a valid manifest parses", () => {
  const m = sampleManifest();
  assert.deepEqual(parseManifest(JSON.stringify(m), "t"), m);
});

test("bad manifests are E_MANIFEST_INVALID naming the field", () => {
  assert.match(code(() => parseManifest("{", "snap")), /^E_MANIFEST_INVALID: snap: not valid JSON/);
  assert.match(code(() => parseManifest(JSON.stringify({ ...sampleManifest(), schema: "stasis.snapshot/v9" }), "s")), /schema "stasis.snapshot\/v9"/);
  const noFiles = { ...sampleManifest(), files: "x" };
  assert.match(code(() => parseManifest(JSON.stringify(noFiles), "s")), /^E_MANIFEST_INVALID: s: files: Expected array/);
  const escape = sampleManifest();
  escape.files[0]!.path = "../etc/passwd";
  assert.match(code(() => parseManifest(JSON.stringify(escape), "s")), /files\.0\.path: a relative path inside the snapshot/);
  const badDigest = sampleManifest();
  badDigest.files[0]!.sha256 = "xyz";
  assert.match(code(() => parseManifest(JSON.stringify(badDigest), "s")), /sha256 hex digest/);
});
