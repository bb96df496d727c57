import { test } from "node:test";
import assert from "node:assert/strict";
import { readOrder } from "./background-reads.js";
import type { FileEntry } from "../store/manifest.js";

const f = (path: string, role: FileEntry["role"]): FileEntry => ({
  path,
  role,
  size: 1,
  sha256: "0".repeat(64),
  chunkSize: 1,
  chunks: [],
});

test("files are read in the order the restore needs them: metadata, memory pages, weights, the rest", () => {
  const order = readOrder([
    f("weights/rank0.stasisw", "weights"),
    f("images/pages-1.img", "image"),
    f("logs/x", "log"),
    f("images/core-1.img", "image"),
    f("link-remap/0-link_remap.1", "link-remap"),
  ]);
  assert.deepEqual(
    order.map((x) => x.path),
    ["images/core-1.img", "link-remap/0-link_remap.1", "images/pages-1.img", "weights/rank0.stasisw", "logs/x"],
  );
});

test("prefetch images reads what CRIU reads, weights only the weights, all both; none reads nothing", async (t) => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { startBackgroundReads } = await import("./background-reads.js");
  const { evict } = await import("../pagecache/evict.js");
  const { Events } = await import("../events.js");
  const { sampleManifest } = await import("../testing/fixtures.js");
  const dir = mkdtempSync(join(tmpdir(), "stasis-bgreads-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "images"));
  mkdirSync(join(dir, "weights"));
  const MiB = 1 << 20;
  writeFileSync(join(dir, "images", "pages-1.img"), Buffer.alloc(2 * MiB, 1));
  writeFileSync(join(dir, "weights", "rank0.stasisw"), Buffer.alloc(3 * MiB, 2));
  const files: FileEntry[] = [
    { ...f("images/pages-1.img", "image"), size: 2 * MiB },
    { ...f("weights/rank0.stasisw", "weights"), size: 3 * MiB },
  ];
  const snap = { name: "s", dir, manifest: { ...sampleManifest(), files } };
  const run = async (prefetch: "all" | "images" | "weights" | "none") => {
    await evict(files.map((x) => join(dir, x.path)));
    return startBackgroundReads(snap, { verify: "size", prefetch, events: new Events() }).done();
  };
  const total = (s: { bytesRead: number; bytesAlreadyResident: number }) => s.bytesRead + s.bytesAlreadyResident;
  assert.equal(total(await run("images")), 2 * MiB, "only the image is looked at");
  assert.equal(total(await run("weights")), 3 * MiB, "only the weights are looked at");
  assert.equal(total(await run("all")), 5 * MiB);
  assert.deepEqual(await run("none"), { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 });
});
