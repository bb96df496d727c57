import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { combine } from "../store/digest.js";
import type { FileEntry, Manifest } from "../store/manifest.js";
import { Staging } from "../store/store.js";
import { ChunkCache, sha256 } from "./cache.js";
import type { Remote } from "./client.js";
import { PullStream, createFiles, forCriu } from "./stream.js";
import { fetchChunk, noCounts } from "./_fetch.js";

const CHUNK = 4;
const src = { bucket: "b", prefix: "p" };

/** A file of `text` in 4-byte chunks, and the objects its chunks are stored as. */
function file(path: string, role: FileEntry["role"], text: string, objects: Map<string, Buffer>): FileEntry {
  const chunks: string[] = [];
  for (let at = 0; at < Math.max(1, text.length); at += CHUNK) {
    const buf = Buffer.from(text.slice(at, at + CHUNK));
    chunks.push(sha256(buf));
    objects.set(`p/chunks/${sha256(buf)}`, buf);
  }
  return { path, role, size: text.length, sha256: combine(chunks), chunkSize: CHUNK, chunks };
}

/** A store in memory that records the order of its reads. */
function fakeRemote(objects: Map<string, Buffer>, reads: string[]): Remote {
  const get = async (key: string) => {
    reads.push(key);
    await new Promise((r) => setImmediate(r));
    return objects.get(key);
  };
  return {
    endpoint: "memory",
    credentialSource: "none",
    head: async (key) => objects.get(key)?.length,
    get: async (key) => (await get(key))!,
    getIfExists: get,
    put: async (key, body) => void objects.set(key, body),
    getRange: async (key, start, into) => {
      const obj = await get(key);
      if (!obj) return undefined;
      obj.copy(into, 0, start, start + into.length);
      return obj.length;
    },
    putParts: async (key, body) => void objects.set(key, body),
    folders: async () => [],
    list: async () => [],
    delete: async (key) => void objects.delete(key),
  };
}

async function withStream(
  files: (objects: Map<string, Buffer>) => FileEntry[],
  body: (s: PullStream, ctx: { reads: string[]; objects: Map<string, Buffer>; home: string; m: Manifest }) => unknown,
) {
  const home = mkdtempSync(join(tmpdir(), "stasis-stream-"));
  try {
    const objects = new Map<string, Buffer>();
    const reads: string[] = [];
    const m = { files: files(objects) } as Manifest;
    const staging = await Staging.begin("s", home);
    const handles = await createFiles(staging.dir, m.files);
    const cache = await ChunkCache.open(home, 1 << 20);
    const ctx = { remote: fakeRemote(objects, reads), src, cache, concurrency: 1, partSize: 0 };
    const stream = new PullStream({ name: "s", dir: staging.dir, manifest: m }, staging, handles, ctx, new Events());
    await body(stream, { reads, objects, home, m });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test("chunks come in the order a restore needs them: CRIU's metadata, its memory pages, the weights, the rest", () =>
  withStream(
    (o) => [
      file("caches/a.tar", "cache", "cache bytes!", o),
      file("weights.bin", "weights", "the weights of it", o),
      file("images/pages-1.img", "image", "memory pages", o),
      file("images/core-1.img", "image", "core", o),
    ],
    async (stream, { reads, objects, m }) => {
      let weightsFetchedBeforeCriu = -1;
      await stream.whole(forCriu).then(() => (weightsFetchedBeforeCriu = reads.length));
      await stream.finish();
      const fileOf = (key: string) => m.files.find((f) => f.chunks.some((c) => key.endsWith(c)))!.path;
      assert.deepEqual(
        [...new Set(reads.map(fileOf))],
        ["images/core-1.img", "images/pages-1.img", "weights.bin", "caches/a.tar"],
      );
      assert.equal(weightsFetchedBeforeCriu, 4, "CRIU's files were whole after their own 4 chunks");
      assert.equal(reads.length, objects.size);
    },
  ));

test("the files land whole in the store, and every chunk fetched is kept in the node's cache", () =>
  withStream(
    (o) => [file("images/pages-1.img", "image", "0123456789abcdef0", o), file("empty", "other", "", o)],
    async (stream, { home }) => {
      const dir = await stream.finish();
      assert.equal(readFileSync(join(dir, "images/pages-1.img"), "utf8"), "0123456789abcdef0");
      assert.equal(readFileSync(join(dir, "empty"), "utf8"), "");
      assert.equal(readdirSync(join(home, "cache", "chunks")).length, 6);
    },
  ));

test("a damaged chunk fails every wait (E_DIGEST_MISMATCH); abort leaves no folder, the cache only good chunks", () =>
  withStream(
    (o) => [file("images/core-1.img", "image", "good bytes here", o), file("weights.bin", "weights", "damaged", o)],
    async (stream, { objects, m, home }) => {
      const key = `p/chunks/${m.files[1]!.chunks[0]}`;
      objects.set(key, Buffer.from("DAMA"));
      await stream.whole(forCriu); // CRIU's files are whole before the damaged chunk is reached
      await assert.rejects(stream.whole(), (err: StasisError) => err.code === "E_DIGEST_MISMATCH");
      assert.equal((stream.failure() as StasisError).code, "E_DIGEST_MISMATCH");
      await stream.abort();
      assert.deepEqual(
        readdirSync(join(home, "snapshots")).filter((n) => !n.startsWith(".lock")),
        [],
        "no staging folder left",
      );
      for (const name of readdirSync(join(home, "cache", "chunks"))) {
        assert.equal(sha256(readFileSync(join(home, "cache", "chunks", name))), name);
      }
    },
  ));

test("a chunk larger than a part comes as ranged reads in parallel, put together and checked", async () => {
  const objects = new Map<string, Buffer>();
  const buf = Buffer.from("x".repeat(10) + "y".repeat(10) + "z".repeat(3));
  objects.set(`p/chunks/${sha256(buf)}`, buf);
  const reads: string[] = [];
  const home = mkdtempSync(join(tmpdir(), "stasis-parts-"));
  try {
    const ctx = { remote: fakeRemote(objects, reads), src, cache: await ChunkCache.open(home, 0), counts: noCounts() };
    const ref = { digest: sha256(buf), path: "f", offset: 0, length: buf.length };
    const got = await fetchChunk(ref, { ...ctx, partSize: 10 });
    assert.deepEqual(got.buf, buf);
    assert.equal(reads.length, 3, "three parts of at most 10 bytes");
    await assert.rejects(
      fetchChunk({ ...ref, length: buf.length - 1 }, { ...ctx, partSize: 10 }),
      (err: StasisError) => err.code === "E_DIGEST_MISMATCH" && /23 bytes, 22 expected/.test(err.message),
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
