import { test } from "node:test";
import assert from "node:assert/strict";
import { dumpWriters, firstError, hintFor } from "./dump.js";

test("the dump's page writers: STASIS_DUMP_WRITERS where the CRIU has the parallel-dump patch, else CRIU's single writer", () => {
  const patched = { features: ["lazy-prefill", "parallel-dump"] };
  assert.equal(dumpWriters(patched, {}), 1, "one by default");
  assert.equal(dumpWriters(patched, { STASIS_DUMP_WRITERS: "8" }), 8);
  assert.equal(dumpWriters(patched, { STASIS_DUMP_WRITERS: "500" }), 64, "at most 64");
  assert.equal(dumpWriters(patched, { STASIS_DUMP_WRITERS: "two" }), 1);
  assert.equal(dumpWriters({ features: ["lazy-prefill"] }, { STASIS_DUMP_WRITERS: "8" }), 1, "a CRIU without the patch");
});

test("a CRIU log's first real error and the advice for it", () => {
  const log = ["(00.01) Error (criu/util.c:1): RLIMIT_NOFILE too low", "(00.02) Error (criu/sk-inet.c:2): Address already in use", "(00.03) Error (x): later"].join("\n");
  assert.equal(firstError(log), "Error (criu/sk-inet.c:2): Address already in use");
  assert.match(hintFor(log), /still listens on one of its ports/);
  assert.equal(hintFor("nothing known"), "");
});
