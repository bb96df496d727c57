import { test } from "node:test";
import assert from "node:assert/strict";
import { firstError, hintFor } from "./dump.js";

test("a CRIU log's first real error and the advice for it", () => {
  const log = [
    "(00.01) Error (criu/util.c:1): RLIMIT_NOFILE too low",
    "(00.02) Error (criu/sk-inet.c:2): Address already in use",
    "(00.03) Error (x): later",
  ].join("\n");
  assert.equal(firstError(log), "Error (criu/sk-inet.c:2): Address already in use");
  assert.match(hintFor(log), /still listens on one of its ports/);
  assert.equal(hintFor("nothing known"), "");
});
