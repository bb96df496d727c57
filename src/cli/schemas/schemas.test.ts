/**
 * Every `--json` document is published as a JSON Schema (schemas/), and what the commands really print is valid
 * against it. Commands that need root and CRIU (capture, restore, serve, demo, bench) are checked the same way in
 * schemas.itest.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SCHEMAS, jsonSchema, type SchemaName } from "./schemas.js";
import { REPO, stasis, tempHome } from "../../testing/cli.js";
import { assertValidDocument } from "../../testing/schemas.js";
import { sampleManifest } from "../../testing/fixtures.js";
import { digestFiles } from "../../store/digest.js";
import { COMMANDS } from "../registry.js";

test("the published schemas are the ones generated from the code (node scripts/gen-schemas.mjs)", () => {
  // The daemon's openapi.json sits beside them (src/serve/openapi.test.ts checks it).
  const published = readdirSync(join(REPO, "schemas"))
    .filter((f) => f.startsWith("stasis."))
    .sort();
  assert.deepEqual(
    published,
    Object.keys(SCHEMAS)
      .map((n) => `stasis.${n}.v1.json`)
      .sort(),
  );
  for (const name of Object.keys(SCHEMAS) as SchemaName[]) {
    assert.deepEqual(
      JSON.parse(readFileSync(join(REPO, "schemas", `stasis.${name}.v1.json`), "utf8")),
      jsonSchema(name),
      `schemas/stasis.${name}.v1.json is stale`,
    );
  }
  assert.deepEqual(
    COMMANDS.map((c) => c.name).filter((n) => !(n in SCHEMAS)),
    [],
    "every command has a schema",
  );
});

test("real outputs of ls, inspect, residency, prefetch, evict, rm, ps, stop, doctor and an error are valid against their schemas", async (t) => {
  const home = tempHome();
  t.after(home.cleanup);
  const run = async (args: string[], schema: string, code = 0) => {
    const r = await stasis([...args, "--json"], home.env);
    assert.equal(r.code, code, r.output);
    assertValidDocument(r.json, schema);
    return r.json;
  };
  assert.deepEqual((await run(["ls"], "stasis.ls/v1")).snapshots, []);
  const dir = join(home.home, "snapshots", "snap");
  mkdirSync(join(dir, "images"), { recursive: true });
  writeFileSync(join(dir, "images", "pages-1.img"), Buffer.alloc(70_000, 1));
  const files = await digestFiles(dir, [{ path: "images/pages-1.img", role: "image" }], { chunkSize: 1 << 16 });
  writeFileSync(
    join(dir, "manifest.json"),
    JSON.stringify({ ...sampleManifest(), name: "snap", files, timings: { coldStartMs: 5012.345, totalMs: 7000 } }),
  );
  mkdirSync(join(home.home, "snapshots", "broken"));
  writeFileSync(join(home.home, "snapshots", "broken", "manifest.json"), "{");
  const ls = await run(["ls"], "stasis.ls/v1");
  assert.deepEqual(
    ls.snapshots.map((s: { name: string }) => s.name),
    ["broken", "snap"],
  );
  assert.equal(ls.snapshots[1].coldStartMs, 5012.3, "durations rounded to 0.1 ms");
  const inspect = await run(["inspect", "snap", "--verify"], "stasis.inspect/v1");
  assert.deepEqual([inspect.snapshot, inspect.snapshotDir, inspect.verified.bytes], ["snap", dir, 70_000]);
  const residency = await run(["residency", "--snapshot", "snap"], "stasis.residency/v1");
  assert.deepEqual(
    [residency.snapshot, residency.snapshotDir],
    ["snap", dir],
    "a snapshot is its name; its folder is snapshotDir",
  );
  const prefetch = await run(["prefetch", "--snapshot", "snap"], "stasis.prefetch/v1");
  assert.equal(typeof prefetch.durationMs, "number");
  await run(["evict", "--snapshot", "snap"], "stasis.evict/v1");
  await run(["residency", join(dir, "images")], "stasis.residency/v1");
  await run(["ps", "--all"], "stasis.ps/v1");
  await run(["stop", "--all"], "stasis.stop/v1");
  await run(["rm", "broken"], "stasis.rm/v1");
  const doctor = await stasis(["doctor", "--json"], home.env);
  assertValidDocument(doctor.json, "stasis.doctor/v1");
  const missing = await run(["inspect", "nope"], "stasis.error/v1", 3);
  assert.equal(missing.error.code, "E_SNAPSHOT_NOT_FOUND");
  const typo = await run(["inspect", "snap", "--verfy"], "stasis.error/v1", 2);
  assert.match(typo.error.hint, /did you mean --verify\?/);
});
