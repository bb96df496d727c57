import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError } from "../errors.js";
import { formatRemote, keys, parseRemoteSnapshot, parseRemoteStore } from "./url.js";

test("a store's URL gives its bucket and prefix, with or without a prefix and a trailing slash", () => {
  assert.deepEqual(parseRemoteStore("s3://models/fleet/a/"), { bucket: "models", prefix: "fleet/a" });
  assert.deepEqual(parseRemoteStore("s3://models"), { bucket: "models", prefix: "" });
  assert.equal(keys.chunk({ bucket: "m", prefix: "" }, "ab"), "chunks/ab");
  assert.equal(keys.manifest({ bucket: "m", prefix: "p" }, "n"), "p/snapshots/n/manifest.json");
  assert.equal(formatRemote({ bucket: "m", prefix: "p" }, "n"), "s3://m/p/n");
});

test("a snapshot's URL ends in its name, checked like a local snapshot name", () => {
  assert.deepEqual(parseRemoteSnapshot("s3://models/fleet/llama-3b"), {
    bucket: "models",
    prefix: "fleet",
    name: "llama-3b",
  });
  assert.deepEqual(parseRemoteSnapshot("s3://models/llama"), { bucket: "models", prefix: "", name: "llama" });
  assert.throws(
    () => parseRemoteSnapshot("s3://models"),
    (e: StasisError) => e.code === "E_USAGE" && /names no snapshot/.test(e.message),
  );
  assert.throws(
    () => parseRemoteSnapshot("s3://models/x/bad name"),
    (e: StasisError) => e.code === "E_INVALID_NAME",
  );
});

test("what is not an S3 location is refused with what was expected", () => {
  for (const bad of ["models/x", "s3://", "s3://UPPER/x", "s3://m/a//b", "s3://mm/../x"]) {
    assert.throws(
      () => parseRemoteStore(bad),
      (e: StasisError) => e.code === "E_USAGE" && e.hint !== undefined,
      bad,
    );
  }
});
