import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../config/config.js";
import { partBytes, uploadPartBytes } from "./_fetch.js";

const MiB = 1024 * 1024;

test("one STASIS_REMOTE_PART_MB for both ways: unset, pulls in 16 MiB parts and pushes whole; set, both alike", () => {
  const unset = loadConfig({});
  assert.deepEqual([partBytes(unset), uploadPartBytes(unset)], [16 * MiB, 0]);
  const set = loadConfig({ STASIS_REMOTE_PART_MB: "8" });
  assert.deepEqual([partBytes(set), uploadPartBytes(set)], [8 * MiB, 8 * MiB]);
  const whole = loadConfig({ STASIS_REMOTE_PART_MB: "0" });
  assert.deepEqual([partBytes(whole), uploadPartBytes(whole)], [0, 0]);
  assert.throws(() => loadConfig({ STASIS_REMOTE_PART_MB: "-1" }), /from 0 to 5120/);
});
