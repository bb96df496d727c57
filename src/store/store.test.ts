import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Staging, checkName, listSnapshots, openSnapshot, removeSnapshot, cleanStaging } from "./store.js";
import { sampleManifest } from "../testing/fixtures.js";
import { StasisError } from "../errors.js";

let home: string;
beforeEach(() => (home = mkdtempSync(join(tmpdir(), "stasis-store-"))));
afterEach(() => rmSync(home, { recursive: true, force: true }));

const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: StasisError) => e.code,
  );

test("a snapshot being written is invisible until commit, then appears whole", async () => {
  const staging = await Staging.begin("snap", home);
  writeFileSync(join(staging.dir, "data"), "x");
  assert.deepEqual(await listSnapshots(home), []);
  assert.equal(await codeOf(openSnapshot("snap", home)), "E_SNAPSHOT_NOT_FOUND");
  await staging.commit({ ...sampleManifest(), name: "snap" });
  const snap = await openSnapshot("snap", home);
  assert.equal(snap.manifest.name, "snap");
  assert.ok(existsSync(join(snap.dir, "data")));
  assert.deepEqual(readdirSync(join(home, "snapshots")), ["snap"]);
});

test("abort leaves nothing; a second capture of a taken name is refused", async () => {
  const s1 = await Staging.begin("a", home);
  assert.equal(await codeOf(Staging.begin("a", home)), "E_SNAPSHOT_BUSY");
  await s1.abort();
  assert.deepEqual(readdirSync(join(home, "snapshots")), []);
  const s2 = await Staging.begin("a", home);
  await s2.commit(sampleManifest());
  assert.equal(await codeOf(Staging.begin("a", home)), "E_SNAPSHOT_EXISTS");
});

test("a lock and staging folder left by a dead capture are reclaimed", async () => {
  mkdirSync(join(home, "snapshots"), { recursive: true });
  writeFileSync(join(home, "snapshots", ".lock-b"), "999999999");
  mkdirSync(join(home, "snapshots", ".staging-b-999999999-abcdef01"));
  const s = await Staging.begin("b", home);
  assert.deepEqual(await cleanStaging(home), [".staging-b-999999999-abcdef01"]);
  await s.abort();
});

test("a staging folder whose owner's pid now runs another process (pid reuse) is reclaimed", async () => {
  const live = await Staging.begin("c", home);
  const reused = join(home, "snapshots", `.staging-d-${process.pid}-abcdef02`);
  mkdirSync(reused);
  // This process's pid, with a start time it never had: the capture that wrote it is dead, the pid reused.
  const owner = { pid: process.pid, startTime: 1, criuLog: "/nonexistent" };
  writeFileSync(join(reused, "owner.json"), JSON.stringify(owner));
  const stale: unknown[] = [];
  assert.deepEqual(await cleanStaging(home, async (o) => void stale.push(o)), [basename(reused)]);
  assert.deepEqual(stale, [owner], "told what else the dead capture owned");
  assert.ok(readdirSync(join(home, "snapshots")).includes(basename(live.dir)), "the live capture's folder stays");
  await live.abort();
});

test("names are checked; damaged snapshots are listed as such; rm removes", async () => {
  assert.throws(() => checkName("../x"), /invalid snapshot name/);
  assert.throws(() => checkName(""), /invalid snapshot name/);
  assert.equal(checkName("llama-3.2_3B.v1"), "llama-3.2_3B.v1");
  const s = await Staging.begin("ok", home);
  await s.commit(sampleManifest());
  mkdirSync(join(home, "snapshots", "broken"));
  writeFileSync(join(home, "snapshots", "broken", "manifest.json"), "{");
  const list = await listSnapshots(home);
  assert.deepEqual(
    list.map((l) => [l.name, l.error === undefined]),
    [
      ["broken", false],
      ["ok", true],
    ],
  );
  await removeSnapshot("ok", home);
  assert.equal(await codeOf(removeSnapshot("ok", home)), "E_SNAPSHOT_NOT_FOUND");
  assert.deepEqual(readdirSync(join(home, "snapshots")), ["broken"]);
});
