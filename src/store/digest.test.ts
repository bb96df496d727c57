import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { digestFiles, followAppends } from "./digest.js";

test("files digested while a writer appends to them give the digests of the finished files, hashing each chunk once", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-follow-"));
  try {
    mkdirSync(join(root, "images"));
    const pages = randomBytes(40 * 4096 + 100);
    const other = randomBytes(9000);
    const follow = followAppends(root, "images", (n) => n.startsWith("pages-"), {
      concurrency: 2,
      chunkSize: 4096,
      intervalMs: 2,
    });
    // A writer that appends in pieces that do not end on chunk boundaries; a file that does not match is ignored.
    for (let at = 0; at < pages.length; at += 3000) {
      appendFileSync(join(root, "images", "pages-1.img"), pages.subarray(at, at + 3000));
      await new Promise((r) => setTimeout(r, 3));
    }
    writeFileSync(join(root, "images", "core-1.img"), other);
    // The watch sees the last whole chunk before the writer is done (a loaded machine's timers fire late).
    await new Promise((r) => setTimeout(r, 500));
    follow.stop();
    const { known, bytes } = await follow.result;
    const k = known.get("images/pages-1.img");
    assert.ok(k && k.chunks.length === 40, `every whole chunk was hashed while written (${k?.chunks.length})`);
    assert.equal(bytes, 40 * 4096);
    assert.equal(known.has("images/core-1.img"), false);

    const inputs = [
      { path: "images/pages-1.img", role: "image" as const },
      { path: "images/core-1.img", role: "image" as const },
    ];
    const plain = await digestFiles(root, inputs, { chunkSize: 4096 });
    let hashed = 0;
    const events = {
      progress: (_p: string, done: number) => (hashed = done),
    } as unknown as import("../events.js").Events;
    assert.deepEqual(await digestFiles(root, inputs, { chunkSize: 4096, known, events }), plain);
    assert.equal(hashed, 100 + 9000, "only the tail and the other file were read again");

    // Digests of a file that has since shrunk below them are not trusted.
    truncateSync(join(root, "images", "pages-1.img"), 4096 * 10);
    assert.deepEqual(
      await digestFiles(root, inputs, { chunkSize: 4096, known }),
      await digestFiles(root, inputs, { chunkSize: 4096 }),
    );
    // Digests made with another chunk size are not used.
    assert.deepEqual(
      await digestFiles(root, inputs, { chunkSize: 8192, known }),
      await digestFiles(root, inputs, { chunkSize: 8192 }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("watching a folder the writer has not made yet ends cleanly with nothing known", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-follow-"));
  try {
    const follow = followAppends(root, "images", () => true, { concurrency: 1, intervalMs: 1 });
    await new Promise((r) => setTimeout(r, 10));
    follow.stop();
    const { known, bytes } = await follow.result;
    assert.equal(known.size, 0);
    assert.equal(bytes, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("chunks still queued when the writer is done are left to digestFiles, which gives the same digests", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-follow-"));
  try {
    mkdirSync(join(root, "images"));
    writeFileSync(join(root, "images", "pages-1.img"), randomBytes(200 * 4096));
    const follow = followAppends(root, "images", (n) => n.startsWith("pages-"), {
      concurrency: 1,
      chunkSize: 4096,
      intervalMs: 1,
    });
    await new Promise((r) => setTimeout(r, 5));
    follow.stop();
    const { known, bytes } = await follow.result;
    const k = known.get("images/pages-1.img")?.chunks.length ?? 0;
    assert.equal(bytes, k * 4096, "the known digests are a prefix of whole chunks, nothing else was hashed");
    const inputs = [{ path: "images/pages-1.img", role: "image" as const }];
    assert.deepEqual(
      await digestFiles(root, inputs, { chunkSize: 4096, known }),
      await digestFiles(root, inputs, { chunkSize: 4096 }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
