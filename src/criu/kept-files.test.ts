import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, linkSync, statSync, readFileSync, existsSync, openSync, closeSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findLinkRemaps, keepLinkRemaps, placeFiles, unlinkedFiles } from "./kept-files.js";

test("link_remap files are found by inode, kept in the snapshot, and put back as fresh copies", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lr-"));
  const snap = mkdtempSync(join(tmpdir(), "stasis-lr-snap-"));
  try {
    writeFileSync(join(dir, "sem.abc"), "semaphore");
    linkSync(join(dir, "sem.abc"), join(dir, "link_remap.7")); // what CRIU does at dump
    writeFileSync(join(dir, "link_remap.8"), "someone else's");
    const ino = statSync(join(dir, "sem.abc")).ino;
    const found = await findLinkRemaps(new Map([[dir, new Set([ino])]]));
    assert.deepEqual(found, [join(dir, "link_remap.7")]);
    const kept = await keepLinkRemaps(found, snap);
    assert.deepEqual(kept, [{ original: join(dir, "link_remap.7"), file: "link-remap/0-link_remap.7" }]);
    assert.equal(existsSync(join(dir, "link_remap.7")), false);
    assert.equal(readFileSync(join(snap, kept[0]!.file), "utf8"), "semaphore");

    // A live process's file of the same name is replaced by a new inode, never written into.
    writeFileSync(join(dir, "link_remap.7"), "live");
    const liveIno = statSync(join(dir, "link_remap.7")).ino;
    const first = await placeFiles(snap, kept);
    assert.equal(readFileSync(join(dir, "link_remap.7"), "utf8"), "semaphore");
    assert.notEqual(statSync(join(dir, "link_remap.7")).ino, liveIno);
    assert.deepEqual(first.placed, [{ path: join(dir, "link_remap.7"), dev: statSync(join(dir, "link_remap.7")).dev, ino: statSync(join(dir, "link_remap.7")).ino }]);
    // A second placing (another restore of the same snapshot) takes the name: the first one's remove leaves it.
    const second = await placeFiles(snap, kept);
    await first.remove();
    assert.equal(readFileSync(join(dir, "link_remap.7"), "utf8"), "semaphore", "the second restore's file stays");
    await second.remove();
    assert.equal(existsSync(join(dir, "link_remap.7")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(snap, { recursive: true, force: true });
  }
});

test("unlinkedFiles finds files this process holds open under a deleted name", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-lr-"));
  const path = join(dir, "gone");
  writeFileSync(path, "x");
  const fd = openSync(path, "r");
  try {
    const ino = statSync(path).ino;
    unlinkSync(path);
    const found = await unlinkedFiles([process.pid]);
    assert.ok(found.get(dir)?.has(ino));
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
