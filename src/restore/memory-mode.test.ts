import { test } from "node:test";
import assert from "node:assert/strict";
import { criuMemory } from "./restore.js";
import { defaultPrefillWorkers, parsePrefill } from "../criu/restore.js";
import { StasisError } from "../errors.js";
import type { Criu } from "../criu/locate.js";

const patched: Criu = { path: "/t/criu", version: "4.2.1", source: "stasis-home", features: ["lazy-prefill"] };
const plain: Criu = { ...patched, source: "path", features: [] };

test("memory auto is parallel with stasis's CRIU patch, copy without; the explicit modes are kept", () => {
  assert.equal(criuMemory("auto", patched), "parallel");
  assert.equal(criuMemory("auto", plain), "copy");
  for (const m of ["copy", "lazy", "parallel"] as const) assert.equal(criuMemory(m, patched), m);
  assert.equal(criuMemory("copy", plain), "copy");
  assert.equal(criuMemory("lazy", plain), "lazy");
});

test("memory parallel on a CRIU without the patch is refused with a hint, not downgraded", () => {
  assert.throws(
    () => criuMemory("parallel", plain),
    (e: unknown) => e instanceof StasisError && e.code === "E_CRIU_FEATURE" && /install-criu/.test(e.hint ?? ""),
  );
});

test("the prefill's account is read from the lazy-pages log", () => {
  const log = "(00.101) uffd: 512: x\n(00.300) uffd: prefill: 2159108096 bytes (527126 pages) with 8 workers in 212 ms\n";
  assert.deepEqual(parsePrefill(log), { bytes: 2159108096, workers: 8, ms: 212 });
  assert.equal(parsePrefill("no prefill here"), undefined);
});

test("prefill workers: STASIS_PREFILL_WORKERS when it is a sane number, else min(8, cores)", () => {
  assert.equal(defaultPrefillWorkers({ STASIS_PREFILL_WORKERS: "3" }), 3);
  const dflt = defaultPrefillWorkers({});
  assert.ok(dflt >= 1 && dflt <= 8);
  for (const bad of ["0", "-1", "x", "65", "2.5"]) assert.equal(defaultPrefillWorkers({ STASIS_PREFILL_WORKERS: bad }), dflt);
});
