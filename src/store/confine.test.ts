import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isLinkRemapPath, isShmPath, isSnapshotRelative, resolveInSnapshot } from "./confine.js";
import { checkSnapshotFiles } from "./check-files.js";
import { StasisError } from "../errors.js";

test("manifest paths are spelled inside their snapshot, in /dev/shm by a plain name, or as link_remap.N", () => {
  for (const p of ["images/pages-1.img", "weights/rank0.safetensors", "a.b"])
    assert.equal(isSnapshotRelative(p), true, p);
  for (const p of [
    "",
    "/etc/passwd",
    "../x",
    "images/../../x",
    "images//x",
    "./images/x",
    "images/",
    "images/.",
    "a\0b",
    "a\\..\\b",
  ]) {
    assert.equal(isSnapshotRelative(p), false, JSON.stringify(p));
  }
  assert.equal(isShmPath("/dev/shm/psm_1a2b"), true);
  for (const p of [
    "/dev/shm/",
    "/dev/shm/..",
    "/dev/shm/a/b",
    "/dev/shm/../../etc/passwd",
    "/etc/passwd",
    "psm_1",
    "/dev/shm//x",
  ]) {
    assert.equal(isShmPath(p), false, p);
  }
  assert.equal(isLinkRemapPath("/dev/shm/link_remap.3"), true);
  assert.equal(isLinkRemapPath("/tmp/x/link_remap.12"), true);
  for (const p of [
    "/etc/passwd",
    "link_remap.3",
    "/tmp/../etc/link_remap.3",
    "/tmp/link_remap.3x",
    "/tmp/link_remap.",
  ]) {
    assert.equal(isLinkRemapPath(p), false, p);
  }
});

test("a snapshot file that leads outside its folder (a symlinked file or folder) is refused", async (t) => {
  const host = mkdtempSync(join(tmpdir(), "stasis-host-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-snap-"));
  t.after(() => [host, snap].forEach((d) => rmSync(d, { recursive: true, force: true })));
  writeFileSync(join(host, "secret"), "abc");
  mkdirSync(join(snap, "images"));
  writeFileSync(join(snap, "images", "core-1.img"), "abc");
  symlinkSync(join(host, "secret"), join(snap, "images", "pages-1.img"));
  symlinkSync(host, join(snap, "weights"));
  const refused = (e: unknown) => e instanceof StasisError && e.code === "E_PATH_OUTSIDE_SNAPSHOT";
  assert.equal(await resolveInSnapshot(snap, "images/core-1.img"), join(snap, "images", "core-1.img"));
  await assert.rejects(resolveInSnapshot(snap, "images/pages-1.img"), refused);
  await assert.rejects(resolveInSnapshot(snap, "weights/secret"), refused);
  await assert.rejects(resolveInSnapshot(snap, "images"), refused, "a folder is not a file");
  await assert.rejects(checkSnapshotFiles(snap, [{ path: "images/pages-1.img", size: 3 }]), refused);
  await assert.rejects(checkSnapshotFiles(snap, [{ path: "weights/secret", size: 3 }]), refused);
  await checkSnapshotFiles(snap, [{ path: "images/core-1.img", size: 3 }]);
});

test("a truncated or missing snapshot file is named at once, from its size alone", async (t) => {
  const snap = mkdtempSync(join(tmpdir(), "stasis-snap-"));
  t.after(() => rmSync(snap, { recursive: true, force: true }));
  mkdirSync(join(snap, "images"));
  writeFileSync(join(snap, "images", "pages-1.img"), "ab");
  const mismatch = (re: RegExp) => (e: unknown) =>
    e instanceof StasisError && e.code === "E_DIGEST_MISMATCH" && re.test(e.message) && Boolean(e.hint);
  await assert.rejects(
    checkSnapshotFiles(snap, [{ path: "images/pages-1.img", size: 4096 }]),
    mismatch(/images\/pages-1\.img has 2 bytes, the manifest says 4096/),
  );
  await assert.rejects(
    checkSnapshotFiles(snap, [{ path: "images/pages-2.img", size: 1 }]),
    mismatch(/images\/pages-2\.img is missing/),
  );
});
