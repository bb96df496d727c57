import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { digestFiles, followAppends, verifyFiles, combine } from "./digest.js";
import { StasisError } from "../errors.js";

test("files are digested per chunk, in parallel, and verified; a changed byte or size is caught", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-"));
  try {
    mkdirSync(join(root, "images"));
    const data = randomBytes(10_000);
    writeFileSync(join(root, "images", "a.img"), data);
    writeFileSync(join(root, "empty"), "");
    const entries = await digestFiles(root, [{ path: "images/a.img", role: "image" }, { path: "empty", role: "other" }], { chunkSize: 4096, concurrency: 3 });
    const a = entries[0]!;
    assert.equal(a.size, 10_000);
    assert.equal(a.chunks.length, 3);
    assert.equal(a.chunks[2], createHash("sha256").update(data.subarray(8192)).digest("hex"));
    assert.equal(a.sha256, combine(a.chunks));
    assert.equal(entries[1]!.chunks.length, 1);
    assert.deepEqual(await verifyFiles(root, entries), { bytes: 10_000 });

    const changed = Buffer.from(data);
    changed[5000] = changed[5000]! ^ 1;
    writeFileSync(join(root, "images", "a.img"), changed);
    await assert.rejects(verifyFiles(root, entries), (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /bytes 4096\.\.8192/.test(e.message));
    writeFileSync(join(root, "images", "a.img"), data.subarray(1));
    await assert.rejects(verifyFiles(root, entries), (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /9999 bytes/.test(e.message));
    rmSync(join(root, "images", "a.img"));
    await assert.rejects(verifyFiles(root, entries), (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /missing/.test(e.message));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("files digested while a writer appends to them give the digests of the finished files, hashing each chunk once", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-follow-"));
  try {
    mkdirSync(join(root, "images"));
    const pages = randomBytes(40 * 4096 + 100);
    const other = randomBytes(9000);
    const follow = followAppends(root, "images", (n) => n.startsWith("pages-"), { concurrency: 2, chunkSize: 4096, intervalMs: 2 });
    // A writer that appends in pieces that do not end on chunk boundaries; a file that does not match is ignored.
    for (let at = 0; at < pages.length; at += 3000) {
      appendFileSync(join(root, "images", "pages-1.img"), pages.subarray(at, at + 3000));
      await new Promise((r) => setTimeout(r, 3));
    }
    writeFileSync(join(root, "images", "core-1.img"), other);
    await new Promise((r) => setTimeout(r, 100)); // the watch sees the last whole chunk before the writer is done
    follow.stop();
    const { known, bytes } = await follow.result;
    const k = known.get("images/pages-1.img");
    assert.ok(k && k.chunks.length === 40, `every whole chunk was hashed while written (${k?.chunks.length})`);
    assert.equal(bytes, 40 * 4096);
    assert.equal(known.has("images/core-1.img"), false);

    const inputs = [{ path: "images/pages-1.img", role: "image" as const }, { path: "images/core-1.img", role: "image" as const }];
    const plain = await digestFiles(root, inputs, { chunkSize: 4096 });
    let hashed = 0;
    const events = { progress: (_p: string, done: number) => (hashed = done) } as unknown as import("../events.js").Events;
    assert.deepEqual(await digestFiles(root, inputs, { chunkSize: 4096, known, events }), plain);
    assert.equal(hashed, 100 + 9000, "only the tail and the other file were read again");

    // Digests of a file that has since shrunk below them are not trusted.
    truncateSync(join(root, "images", "pages-1.img"), 4096 * 10);
    assert.deepEqual(await digestFiles(root, inputs, { chunkSize: 4096, known }), await digestFiles(root, inputs, { chunkSize: 4096 }));
    // Digests made with another chunk size are not used.
    assert.deepEqual(await digestFiles(root, inputs, { chunkSize: 8192, known }), await digestFiles(root, inputs, { chunkSize: 8192 }));
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
    const follow = followAppends(root, "images", (n) => n.startsWith("pages-"), { concurrency: 1, chunkSize: 4096, intervalMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    follow.stop();
    const { known, bytes } = await follow.result;
    const k = known.get("images/pages-1.img")?.chunks.length ?? 0;
    assert.equal(bytes, k * 4096, "the known digests are a prefix of whole chunks, nothing else was hashed");
    const inputs = [{ path: "images/pages-1.img", role: "image" as const }];
    assert.deepEqual(await digestFiles(root, inputs, { chunkSize: 4096, known }), await digestFiles(root, inputs, { chunkSize: 4096 }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
