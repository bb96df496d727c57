import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { instanceDir, pruneFailedRuns, FAILED_RUN_LOGS_KEPT_MS } from "./instances.js";

test("the folders of failed runs (no instance.json) go after a week; recorded instances and recent failures stay", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-inst-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const root = join(home, "instances");
  const old = new Date(Date.now() - FAILED_RUN_LOGS_KEPT_MS - 60_000);
  for (const id of ["failed-old", "failed-new", "running-old"]) {
    mkdirSync(join(root, id), { recursive: true });
    writeFileSync(join(root, id, "stderr.log"), "why it failed");
  }
  writeFileSync(join(root, "running-old", "instance.json"), "{}");
  for (const id of ["failed-old", "running-old"]) utimesSync(join(root, id), old, old);
  assert.deepEqual(await pruneFailedRuns(home), ["failed-old"]);
  assert.deepEqual(
    ["failed-old", "failed-new", "running-old"].map((id) => existsSync(join(root, id))),
    [false, true, true],
  );
  utimesSync(join(root, "failed-new"), old, old);
  const fresh = await instanceDir("next", home);
  assert.equal(existsSync(fresh.dir), true);
  assert.equal(existsSync(join(root, "failed-new")), false, "pruned when the next run starts");
});
