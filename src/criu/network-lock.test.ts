import { test } from "node:test";
import assert from "node:assert/strict";
import { criuRunId, lockTableName } from "./network-lock.js";

test("the lock table's name is CRIU's: 'inet CRIU-' and the run id, cut to CRIU's 31 characters", () => {
  // As CRIU 4.2 made it for run 7106451f-704c-4649-b4a0-e0379eb6ce3d (`nft list tables` showed this name).
  assert.equal(lockTableName("7106451f-704c-4649-b4a0-e0379eb6ce3d"), "CRIU-7106451f-704c-4649-b4");
  assert.equal(lockTableName("abc"), "CRIU-abc");
});

test("a CRIU log's run id is read from its first lines", () => {
  const log = "(00.000000) CRIU run id = 7106451f-704c-4649-b4a0-e0379eb6ce3d\n(00.000010) Version: 4.2";
  assert.equal(criuRunId(log), "7106451f-704c-4649-b4a0-e0379eb6ce3d");
  assert.equal(criuRunId("(00.000000) Version: 4.2\n"), undefined);
});
