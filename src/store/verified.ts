import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * What stasis remembers about a snapshot file whose every chunk matched the manifest's digests: its identity
 * (device, inode), size, modification and status-change times in nanoseconds, and the boot it was checked in.
 * Any write, truncation, replacement, chmod or new hard link changes one of them (the kernel sets ctime on
 * every change to the inode and no one can set it back), and a reboot starts over: a file whose stamp still
 * matches holds the bytes that were verified. `--verify auto` re-hashes only files without a matching stamp.
 */
export interface Stamp {
  dev: string;
  ino: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
}

interface StampFile {
  version: 1;
  bootId: string;
  files: Record<string, Stamp>;
}

export const STAMPS_FILE = "verified.json";

export async function bootId(): Promise<string> {
  return (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "unknown")).trim();
}

async function stampOf(path: string): Promise<Stamp | undefined> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  if (!s) return undefined;
  return {
    dev: String(s.dev),
    ino: String(s.ino),
    size: Number(s.size),
    mtimeNs: String(s.mtimeNs),
    ctimeNs: String(s.ctimeNs),
  };
}

async function readStamps(dir: string): Promise<StampFile | undefined> {
  try {
    const j = JSON.parse(await readFile(join(dir, STAMPS_FILE), "utf8")) as StampFile;
    return j.version === 1 && typeof j.files === "object" ? j : undefined;
  } catch {
    return undefined; // none yet, or damaged: everything is verified again
  }
}

/** Of the files stamped `now` (stampFiles), those verified in this boot and not changed since. */
export async function stillVerified(dir: string, now: Map<string, Stamp>): Promise<Set<string>> {
  const [stamps, boot] = await Promise.all([readStamps(dir), bootId()]);
  if (!stamps || stamps.bootId !== boot) return new Set();
  return new Set([...now].filter(([path, s]) => sameStamp(stamps.files[path], s)).map(([path]) => path));
}

function sameStamp(a: Stamp | undefined, b: Stamp | undefined): boolean {
  return (
    !!a &&
    !!b &&
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

/**
 * The stamps of `files` now, leaving out any missing or not of the size given: take them before reading the
 * bytes that are then checked.
 */
export async function stampFiles(dir: string, files: { path: string; size?: number }[]): Promise<Map<string, Stamp>> {
  const out = new Map<string, Stamp>();
  await Promise.all(
    files.map(async (f) => {
      const s = await stampOf(join(dir, f.path));
      if (s && (f.size === undefined || s.size === f.size)) out.set(f.path, s);
    }),
  );
  return out;
}

/**
 * Records files as verified, given the stamps taken before their bytes were checked (or digested into the
 * manifest, at capture); a file whose stamp changed meanwhile is left out. Written to a temporary name and
 * renamed: readers see the old stamps or the new, never a torn file; a failure to write costs only a
 * re-verification next time.
 */
export async function recordVerified(dir: string, before: Map<string, Stamp>): Promise<void> {
  const [prev, boot] = await Promise.all([readStamps(dir), bootId()]);
  const out: StampFile = { version: 1, bootId: boot, files: prev?.bootId === boot ? { ...prev.files } : {} };
  await Promise.all(
    [...before].map(async ([path, was]) => {
      if (sameStamp(await stampOf(join(dir, path)), was)) out.files[path] = was;
      else delete out.files[path];
    }),
  );
  const tmp = join(dir, `.${STAMPS_FILE}.${process.pid}`);
  try {
    await writeFile(tmp, JSON.stringify(out), { mode: 0o600 });
    await rename(tmp, join(dir, STAMPS_FILE));
  } catch {
    /* read-only store, full disk: the next restore verifies again */
  }
}
