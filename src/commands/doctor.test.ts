import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readConfig, unknownVariables } from "../config/config.js";
import { settingsReport, variablesCheck } from "./doctor.js";
import { stasis, tempHome } from "../testing/cli.js";

const { env, cleanup } = tempHome();
after(cleanup);

test("doctor's settings: every knob's effective value and where it came from", () => {
  const report = settingsReport(readConfig({ STASIS_WORKING_SET: "0", STASIS_CHUNK_CACHE_GB: "64" }));
  const by = new Map(report.map((s) => [s.knob, s]));
  assert.deepEqual([by.get("STASIS_WORKING_SET")?.value, by.get("STASIS_WORKING_SET")?.source], [false, "env"]);
  assert.deepEqual([by.get("STASIS_CHUNK_CACHE_GB")?.value, by.get("STASIS_CHUNK_CACHE_GB")?.source], [64, "env"]);
  assert.deepEqual([by.get("STASIS_CRIU")?.value, by.get("STASIS_CRIU")?.source], [null, "default"]);
});

test("stasis doctor --json and its text show them; a bad value stops it with E_USAGE", async () => {
  const json = await stasis(["doctor", "--json"], { ...env, STASIS_WORKING_SET: "off" });
  const ws = json.json.settings.find((s: { knob: string }) => s.knob === "STASIS_WORKING_SET");
  assert.deepEqual([ws.value, ws.source], [false, "env"], json.output);
  const text = await stasis(["doctor"], { ...env, STASIS_REMOTE_PART_MB: "3" });
  assert.match(text.stdout, /STASIS_REMOTE_PART_MB +3 +env/);
  assert.match(text.stdout, /STASIS_WORKING_SET +1 +default/);
  const bad = await stasis(["doctor", "--json"], { ...env, STASIS_REMOTE_CONCURRENCY: "lots" });
  assert.equal(bad.code, 2);
  assert.match(bad.json.error.message, /STASIS_REMOTE_CONCURRENCY="lots"/);
});

test("a STASIS_* variable stasis does not read is warned of, not ignored: a removed one with what replaced it", async () => {
  const vars = {
    STASIS_PIN_WEIGHTS_MAX: "4",
    STASIS_WORKNG_SET: "0",
    STASIS_TEST_DIR: "/d",
    STASIS_HOME: "/h",
    X: "1",
  };
  assert.deepEqual(unknownVariables({ ...vars, STASIS_PREFILL_WORKERS: "" }), [
    "STASIS_PIN_WEIGHTS_MAX",
    "STASIS_WORKNG_SET",
  ]);
  const check = variablesCheck(unknownVariables(vars));
  assert.equal(check.status, "warn");
  assert.match(
    check.detail,
    /STASIS_PIN_WEIGHTS_MAX \(removed; instead: `stasis serve --pin-weights --pin-weights-max N`\)/,
  );
  assert.match(check.detail, /STASIS_WORKNG_SET \(no such setting\)/);
  assert.equal(variablesCheck([]).status, "pass");
  const r = await stasis(["doctor", "--json"], { ...env, STASIS_CRIU_LOG_MAX_MB: "8" });
  const settings = r.json.checks.find((c: { name: string }) => c.name === "settings");
  assert.equal(settings.status, "warn", r.output);
  assert.match(settings.detail, /STASIS_CRIU_LOG_MAX_MB \(removed/);
});
