import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { combine, digestFiles } from "../store/digest.js";
import { verifyFiles } from "./verify.js";
import { StasisError } from "../errors.js";

test("files are digested per chunk, in parallel, and verified; a changed byte or size is caught", async () => {
  const root = mkdtempSync(join(tmpdir(), "stasis-digest-"));
  try {
    mkdirSync(join(root, "images"));
    const data = randomBytes(10_000);
    writeFileSync(join(root, "images", "a.img"), data);
    writeFileSync(join(root, "empty"), "");
    const entries = await digestFiles(
      root,
      [
        { path: "images/a.img", role: "image" },
        { path: "empty", role: "other" },
      ],
      { chunkSize: 4096, concurrency: 3 },
    );
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
    await assert.rejects(
      verifyFiles(root, entries),
      (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /bytes 4096\.\.8192/.test(e.message),
    );
    writeFileSync(join(root, "images", "a.img"), data.subarray(1));
    await assert.rejects(
      verifyFiles(root, entries),
      (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /9999 bytes/.test(e.message),
    );
    rmSync(join(root, "images", "a.img"));
    await assert.rejects(
      verifyFiles(root, entries),
      (e: StasisError) => e.code === "E_DIGEST_MISMATCH" && /missing/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
