import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkCache, sha256 } from "./cache.js";

const withCache = async (limit: number, body: (c: ChunkCache) => Promise<void>) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-cache-"));
  try {
    await body(await ChunkCache.open(home, limit));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
};

test("a chunk put is got back, root's alone", () =>
  withCache(1 << 20, async (c) => {
    const buf = Buffer.from("chunk one");
    await c.put(sha256(buf), buf);
    assert.deepEqual(await c.get(sha256(buf)), buf);
    assert.equal(statSync(join(c.dir, sha256(buf))).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(c.dir), [sha256(buf)], "no temporary file left");
  }));

test("a damaged cached chunk is dropped, never handed out", () =>
  withCache(1 << 20, async (c) => {
    const buf = Buffer.from("the right bytes");
    await c.put(sha256(buf), buf);
    writeFileSync(join(c.dir, sha256(buf)), "the wrong bytes");
    assert.equal(await c.get(sha256(buf)), undefined);
    assert.deepEqual(readdirSync(c.dir), []);
  }));

test("trim removes the least recently used chunks until the cache fits its limit", () =>
  withCache(25, async (c) => {
    const chunks = ["a", "b", "c"].map((x) => Buffer.alloc(10, x));
    for (const [i, b] of chunks.entries()) {
      await c.put(sha256(b), b);
      utimesSync(join(c.dir, sha256(b)), 1000 + i, 1000 + i);
    }
    await c.get(sha256(chunks[0]!)); // used just now: kept
    assert.equal(await c.trim(), 10);
    assert.deepEqual(readdirSync(c.dir).sort(), [sha256(chunks[0]!), sha256(chunks[2]!)].sort());
  }));

test("a limit of 0 turns the cache off", () =>
  withCache(0, async (c) => {
    const buf = Buffer.from("x");
    await c.put(sha256(buf), buf);
    assert.equal(await c.get(sha256(buf)), undefined);
  }));
