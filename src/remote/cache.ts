import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stasisHome } from "../home.js";
import { PRIVATE_DIR, PRIVATE_FILE } from "../store/private.js";

/** The node's cache of chunks pulled from stores, by sha256: $STASIS_HOME/cache/chunks/<sha256>. */
export const cacheDir = (home = stasisHome()) => join(home, "cache", "chunks");

/** The cache's size limit from `Config.chunkCacheGb` (STASIS_CHUNK_CACHE_GB; 0 turns the cache off). */
export const cacheLimitBytes = (gib: number): number => gib * 1024 ** 3;

export const sha256 = (buf: Buffer): string => createHash("sha256").update(buf).digest("hex");

/**
 * Chunks kept across pulls, so that a killed pull resumes from what it had fetched and a second snapshot of the
 * same model fetches none of the weights again. Only chunks whose digest was checked go in; a chunk read back is
 * checked again (a damaged one is dropped and fetched anew), so the cache can never hand out wrong bytes.
 */
export class ChunkCache {
  constructor(
    readonly dir: string,
    readonly limitBytes: number,
  ) {}

  static async open(home: string, limitBytes: number): Promise<ChunkCache> {
    const dir = cacheDir(home);
    if (limitBytes > 0) await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    return new ChunkCache(dir, limitBytes);
  }

  /** The chunk's bytes if the cache has it intact; marks it used (the least recently used go first). */
  async get(digest: string): Promise<Buffer | undefined> {
    if (this.limitBytes === 0) return undefined;
    const file = join(this.dir, digest);
    const buf = await readFile(file).catch(() => undefined);
    if (!buf) return undefined;
    if (sha256(buf) !== digest) {
      await rm(file, { force: true });
      return undefined;
    }
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
    return buf;
  }

  /** Whether the cache holds a chunk of that digest (unchecked: `get` checks it). */
  async has(digest: string): Promise<boolean> {
    return this.limitBytes > 0 && (await stat(join(this.dir, digest)).catch(() => undefined)) !== undefined;
  }

  /** Keeps a chunk whose digest the caller checked. Written aside then renamed: a killed pull leaves no half chunk. */
  async put(digest: string, buf: Buffer): Promise<void> {
    if (this.limitBytes === 0) return;
    const tmp = join(this.dir, `.tmp-${digest}-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await writeFile(tmp, buf, { mode: PRIVATE_FILE });
      await rename(tmp, join(this.dir, digest));
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Removes the least recently used chunks until the cache is within its limit. Returns the bytes removed. */
  async trim(): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const entries: { file: string; size: number; used: number }[] = [];
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (st) entries.push({ file: join(this.dir, name), size: st.size, used: st.mtimeMs });
    }
    let total = entries.reduce((a, e) => a + e.size, 0);
    let removed = 0;
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.limitBytes) break;
      await rm(e.file, { force: true });
      total -= e.size;
      removed += e.size;
    }
    return removed;
  }
}
