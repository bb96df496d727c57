import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readConfig } from "../config/config.js";
import { settingsReport } from "./doctor.js";
import { stasis, tempHome } from "../testing/cli.js";

const { env, cleanup } = tempHome();
after(cleanup);

test("doctor's settings: every knob's effective value and where it came from", () => {
  const report = settingsReport(readConfig({ STASIS_WORKING_SET: "0", STASIS_CRIU_LOG_MAX_MB: "64" }));
  const by = new Map(report.map((s) => [s.knob, s]));
  assert.deepEqual([by.get("STASIS_WORKING_SET")?.value, by.get("STASIS_WORKING_SET")?.source], [false, "env"]);
  assert.deepEqual([by.get("STASIS_CRIU_LOG_MAX_MB")?.value, by.get("STASIS_CRIU_LOG_MAX_MB")?.source], [64, "env"]);
  assert.deepEqual([by.get("STASIS_CRIU")?.value, by.get("STASIS_CRIU")?.source], [null, "default"]);
});

test("stasis doctor --json and its text show them; a bad value stops it with E_USAGE", async () => {
  const json = await stasis(["doctor", "--json"], { ...env, STASIS_WORKING_SET: "off" });
  const ws = json.json.settings.find((s: { knob: string }) => s.knob === "STASIS_WORKING_SET");
  assert.deepEqual([ws.value, ws.source], [false, "env"], json.output);
  const text = await stasis(["doctor"], { ...env, STASIS_PREFILL_WORKERS: "3" });
  assert.match(text.stdout, /STASIS_PREFILL_WORKERS +3 +env/);
  assert.match(text.stdout, /STASIS_WORKING_SET +1 +default/);
  const bad = await stasis(["doctor", "--json"], { ...env, STASIS_REMOTE_CONCURRENCY: "lots" });
  assert.equal(bad.code, 2);
  assert.match(bad.json.error.message, /STASIS_REMOTE_CONCURRENCY="lots"/);
});
