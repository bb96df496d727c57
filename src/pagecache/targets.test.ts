import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { resolveTargets, type SnapshotFiles } from "./targets.js";
import { scratch } from "../testing/testfs.js";

const code = (c: string, re?: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === c && (!re || re.test(e.message));

test("paths: directories expand to the regular files under them, sorted, once each", async (t) => {
  const s = scratch("targets");
  t.after(s.cleanup);
  const d = join(s.dir, "d");
  mkdirSync(join(d, "sub"), { recursive: true });
  for (const f of ["b", "a", "sub/c"]) writeFileSync(join(d, f), f);
  symlinkSync(join(d, "a"), join(d, "link-to-file"));
  symlinkSync(d, join(d, "sub", "loop")); // a symlinked directory: not followed
  spawnSync("mkfifo", [join(d, "fifo")]); // not a regular file: skipped inside a directory
  const r = await resolveTargets({ paths: [d, join(d, "a")] }, "prefetch");
  assert.deepEqual(
    r.files.map((f) => f.path),
    ["a", "b", "link-to-file", "sub/c"].map((f) => join(d, f)),
  );
  assert.equal(r.snapshot, undefined);
});

test("paths: missing, FIFO named directly, nothing named", async (t) => {
  const s = scratch("targets");
  t.after(s.cleanup);
  await assert.rejects(resolveTargets({ paths: [join(s.dir, "nope")] }, "prefetch"), code("E_FILE_NOT_FOUND"));
  if (spawnSync("mkfifo", [join(s.dir, "fifo")]).status === 0) {
    await assert.rejects(resolveTargets({ paths: [join(s.dir, "fifo")] }, "prefetch"), code("E_NOT_A_FILE", /FIFO/));
  }
  await assert.rejects(resolveTargets({ paths: [] }, "prefetch"), code("E_USAGE", /--snapshot NAME/));
});

test("snapshot: all its files in manifest order, or those at or under paths inside it", async (t) => {
  const s = scratch("targets");
  t.after(s.cleanup);
  const dir = join(s.dir, "snap");
  mkdirSync(join(dir, "images"), { recursive: true });
  const names = ["images/inventory.img", "images/pages-1.img", "weights.bin"];
  for (const n of names) writeFileSync(join(dir, n), n);
  writeFileSync(join(s.dir, "outside"), "x");
  symlinkSync(join(s.dir, "outside"), join(dir, "escape"));
  const files = names.map((n) => ({
    path: join(dir, n),
    size: n.length,
    chunkSize: 64,
    sha256Chunks: ["0".repeat(64)],
  }));
  const snapshotFiles: SnapshotFiles = async (name) => {
    assert.equal(name, "llama");
    return { dir, files };
  };
  const pick = async (paths: string[]) =>
    (await resolveTargets({ paths, snapshot: "llama" }, "prefetch", { snapshotFiles })).files.map((f) => f.path);
  const all = await resolveTargets({ paths: [], snapshot: "llama" }, "prefetch", { snapshotFiles });
  assert.deepEqual(all.files, files);
  assert.deepEqual(all.snapshot, { name: "llama", dir });
  assert.deepEqual(
    await pick(["weights.bin", "images"]),
    files.map((f) => f.path),
    "manifest order, not argument order",
  );
  assert.deepEqual(await pick([join(dir, "images", "pages-1.img")]), [files[1]!.path]);
  assert.deepEqual(
    await pick(["."]),
    files.map((f) => f.path),
  );
  await assert.rejects(pick(["../outside"]), code("E_PATH_OUTSIDE_SNAPSHOT", /not inside snapshot "llama"/));
  await assert.rejects(pick([join(s.dir, "outside")]), code("E_PATH_OUTSIDE_SNAPSHOT"));
  await assert.rejects(pick(["escape"]), code("E_PATH_OUTSIDE_SNAPSHOT"), "a symlink leading outside");
  await assert.rejects(pick(["../not-there"]), code("E_PATH_OUTSIDE_SNAPSHOT"));
  await assert.rejects(pick(["images/nope.img"]), code("E_FILE_NOT_FOUND"));
  writeFileSync(join(dir, "stray"), "not in the manifest");
  await assert.rejects(pick(["stray"]), code("E_FILE_NOT_FOUND", /not a file of snapshot "llama"/));
});
