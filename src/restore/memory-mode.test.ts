import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, openSync, writeSync, fsyncSync, closeSync, rmSync, mkdirSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { criuMemory, imagesInMemory } from "./restore.js";
import { evict } from "../pagecache/evict.js";
import type { Snapshot } from "../store/store.js";
import { defaultPrefillWorkers, parsePrefill } from "../criu/restore.js";
import { StasisError } from "../errors.js";
import type { Criu } from "../criu/locate.js";

const patched: Criu = { path: "/t/criu", version: "4.2.1", source: "stasis-home", features: ["lazy-prefill"] };
const plain: Criu = { ...patched, source: "path", features: [] };

test("memory auto is parallel with stasis's CRIU patch and the images in memory, else copy; explicit modes are kept", () => {
  assert.equal(criuMemory("auto", patched, true), "parallel");
  assert.equal(
    criuMemory("auto", patched, false),
    "copy",
    "images on disk: the disk is the bottleneck, copy reads faster",
  );
  assert.equal(criuMemory("auto", plain, true), "copy");
  for (const m of ["copy", "lazy", "parallel"] as const) {
    assert.equal(criuMemory(m, patched, true), m);
    assert.equal(criuMemory(m, patched, false), m);
  }
  assert.equal(criuMemory("copy", plain, true), "copy");
  assert.equal(criuMemory("lazy", plain, false), "lazy");
});

test("prefetch auto reads the images only when they are not in the page cache; explicit modes are kept", async () => {
  const { resolvePrefetch } = await import("./modes.js");
  assert.equal(resolvePrefetch("auto", false), "images");
  assert.equal(resolvePrefetch("auto", true), "none");
  for (const m of ["all", "images", "weights", "none"] as const) assert.equal(resolvePrefetch(m, false), m);
});

test("memory parallel on a CRIU without the patch is refused with a hint, not downgraded", () => {
  assert.throws(
    () => criuMemory("parallel", plain, true),
    (e: unknown) => e instanceof StasisError && e.code === "E_CRIU_FEATURE" && /install-criu/.test(e.hint ?? ""),
  );
});

test("the prefill's account is read from the lazy-pages log", () => {
  const log =
    "(00.101) uffd: 512: x\n(00.300) uffd: prefill: 2159108096 bytes (527126 pages) with 8 workers in 212 ms\n";
  assert.deepEqual(parsePrefill(log), { bytes: 2159108096, workers: 8, ms: 212 });
  assert.equal(parsePrefill("no prefill here"), undefined);
});

test("prefill workers: one per core, at most 16", () => {
  const workers = defaultPrefillWorkers();
  assert.ok(workers >= 1 && workers <= 16 && workers <= Math.max(1, availableParallelism()), String(workers));
});

test("images in memory: judged by the page-cache residency of the snapshot's image files only", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-mem-"));
  try {
    mkdirSync(join(dir, "images"));
    const fd = openSync(join(dir, "images", "pages-1.img"), "w");
    writeSync(fd, Buffer.alloc(4 << 20, 7));
    fsyncSync(fd);
    closeSync(fd);
    const snap = {
      dir,
      manifest: {
        files: [
          { path: "images/pages-1.img", role: "image", size: 4 << 20 },
          { path: "weights/w", role: "weights", size: 1 << 30 },
        ],
      },
    } as unknown as Snapshot;
    assert.equal(
      await imagesInMemory(snap),
      true,
      "just written: in the page cache (the weights file, absent, is not looked at)",
    );
    await evict([join(dir, "images", "pages-1.img")]);
    assert.equal(await imagesInMemory(snap), false, "evicted");
    const missing = {
      dir,
      manifest: { files: [{ path: "images/gone.img", role: "image", size: 10 }] },
    } as unknown as Snapshot;
    assert.equal(await imagesInMemory(missing), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
