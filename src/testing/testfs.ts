/** Test support for the page-cache tests: scratch files on a disk-backed filesystem, and eviction. */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FADV, fadvise } from "../native/libc.js";

const TMPFS_MAGIC = 0x01021994;

/**
 * A scratch folder for page-cache tests. tmpfs pages can never be evicted, so the folder goes where the disk
 * is: STASIS_TEST_DIR, else /var/tmp, else the system's temporary folder. `evictable` says whether eviction
 * can work there (tests that need it skip, with that reason, when it cannot).
 */
export function scratch(prefix: string): { dir: string; evictable: boolean; cleanup: () => void } {
  const bases = [process.env.STASIS_TEST_DIR, "/var/tmp", tmpdir()].filter((b): b is string => Boolean(b));
  let dir = "";
  for (const base of bases) {
    try {
      dir = mkdtempSync(join(base, `stasis-${prefix}-`));
      break;
    } catch {
      /* try the next one */
    }
  }
  if (!dir) throw new Error(`no writable scratch folder among ${bases.join(", ")}`);
  const evictable = statfsSync(dir).type !== TMPFS_MAGIC;
  return { dir, evictable, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `size` random bytes (or `fill`) and syncs, so that the file's pages are clean and can be evicted. */
export function writeFile(path: string, size: number, fill?: number): void {
  const fd = openSync(path, "w");
  try {
    const block = Buffer.alloc(Math.min(size, 1 << 20));
    for (let at = 0; at < size; at += block.length) {
      if (fill === undefined) randomFillSync(block);
      else block.fill(fill);
      writeSync(fd, block, 0, Math.min(block.length, size - at), at);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Drops a (clean) file's pages from the page cache. */
export function dropFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fadvise(fd, 0, 0, FADV.DONTNEED, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `attempt` (with its index) until `ok` holds for its result or `tries` runs have been made, and returns the
 * last result, for the test to assert on. The kernel may reclaim a few clean pages of a test's files at any
 * moment when memory is short (seen in CI: 3 MiB of a 4 MiB file between two calls), so a check that needs pages
 * to stay resident from one call to the next repeats its whole scenario rather than fail on the kernel's doing.
 */
export async function settled<T>(attempt: (i: number) => Promise<T> | T, ok: (r: T) => boolean, tries = 5): Promise<T> {
  let r = await attempt(0);
  for (let i = 1; i < tries && !ok(r); i++) r = await attempt(i);
  return r;
}
