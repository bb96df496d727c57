import { chmod, copyFile, lstat, mkdir, open, readdir, readlink, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { basename, dirname, join } from "node:path";
import { readMaps } from "../proc/maps.js";
import { checkPlacedPath, isPlainName, resolveInSnapshot, SHM_ROOT } from "../store/confine.js";
import { PRIVATE_DIR, PRIVATE_FILE } from "../store/private.js";
import { isAlive } from "../store/lockfile.js";

/**
 * Files a snapshot must carry because CRIU's images refer to them by path only.
 *
 * CRIU's --link-remap: a file the server has open or mapped under a name that was unlinked (glibc's sem_open
 * maps `/dev/shm/sem.XXXXXX` and unlinks that temporary name) is hard-linked back at dump time as
 * `<dir>/link_remap.<N>`, and the images refer to that path. Restore needs the file there again, and removes
 * it when done. So capture keeps a copy of each such file in the snapshot and deletes the link (it would
 * otherwise leak in /dev/shm), and restore puts a fresh copy in place before CRIU runs. With --leave-running,
 * CRIU itself deletes the links as its dump ends (it expects a post-dump script to keep what it needs): the
 * dump's action script (holdLinkRemapsScript) hard-links them under a name of stasis's first.
 */

/** Folder -> inodes of files the processes hold open or mapped under an unlinked name. */
export async function unlinkedFiles(pids: number[]): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  const add = (path: string, inode: number) => {
    const dir = dirname(path);
    if (!out.has(dir)) out.set(dir, new Set());
    out.get(dir)!.add(inode);
  };
  for (const pid of pids) {
    for (const m of await readMaps(pid)) if (m.deleted) add(m.path, m.inode);
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (!target.startsWith("/") || !target.endsWith(" (deleted)")) continue;
      const st = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (st) add(target.slice(0, -" (deleted)".length), st.ino);
    }
  }
  return out;
}

/** A link_remap file CRIU made: where the images expect it, and where it is now (`held`: stasis's own link). */
export interface FoundRemap {
  original: string;
  held?: string;
}

/** The prefix of the links the dump's action script makes (see holdLinkRemapsScript). */
const holdPrefix = (tag: string) => `.stasis-keep-${tag}-`;

/**
 * A CRIU action script that, on post-dump, hard-links each `link_remap.N` in `dirs` as
 * `.stasis-keep-<tag>-link_remap.N` (a copy where the file system has no hard links), so that it outlives CRIU's own
 * clean-up.
 */
export function holdLinkRemapsScript(dirs: string[], tag: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    "#!/bin/sh",
    "# stasis: with --leave-running CRIU deletes its link_remap files as the dump ends; keep them (see kept-files.ts)",
    '[ "$CRTOOLS_SCRIPT_ACTION" = "post-dump" ] || exit 0',
    `for d in ${dirs.map(q).join(" ") || "''"}; do`,
    '  for f in "$d"/link_remap.*; do',
    '    [ -f "$f" ] || continue',
    `    ln -f "$f" "$d/${holdPrefix(tag)}\${f##*/}" 2>/dev/null || cp -p "$f" "$d/${holdPrefix(tag)}\${f##*/}"`,
    "  done",
    "done",
    "exit 0",
    "",
  ].join("\n");
}

/** The link_remap files CRIU made for those inodes, found by their own name or by the name `tag`'s script held
 *  them under. */
export async function findLinkRemaps(unlinked: Map<string, Set<number>>, tag?: string): Promise<FoundRemap[]> {
  const found = new Map<string, FoundRemap>();
  for (const [dir, inodes] of unlinked) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const own = /^link_remap\.\d+$/.test(name);
      const held =
        tag !== undefined &&
        name.startsWith(holdPrefix(tag)) &&
        /^link_remap\.\d+$/.test(name.slice(holdPrefix(tag).length));
      if (!own && !held) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (!st || !inodes.has(st.ino)) continue;
      const original = join(dir, held ? name.slice(holdPrefix(tag!).length) : name);
      const entry = found.get(original) ?? { original };
      if (held) entry.held = join(dir, name);
      found.set(original, entry);
    }
  }
  return [...found.values()].sort((a, b) => a.original.localeCompare(b.original));
}

/**
 * Copies link_remap files into `<snapshotDir>/link-remap/` and removes them (CRIU's links and stasis's held
 * ones) from where they were left.
 */
export async function keepLinkRemaps(found: FoundRemap[], snapshotDir: string): Promise<KeptFile[]> {
  if (found.length === 0) return [];
  await mkdir(join(snapshotDir, "link-remap"), { recursive: true, mode: PRIVATE_DIR });
  const kept: KeptFile[] = [];
  for (const [i, f] of found.entries()) {
    const file = join("link-remap", `${i}-${basename(f.original)}`);
    const mode = await keepCopy(f.held ?? f.original, join(snapshotDir, file));
    if (f.held) await rm(f.held, { force: true });
    await rm(f.original, { force: true });
    kept.push({ original: f.original, file, mode });
  }
  return kept;
}

/**
 * Files in shared-memory folders (/dev/shm) that the tree has open or mapped under their own names, such
 * as vLLM's shared-memory queues (`psm_*`). CRIU records such files by path, not content, so they must exist
 * at restore with the contents they had: capture keeps a copy.
 */
export async function sharedMemoryFiles(pids: number[], root = SHM_ROOT): Promise<string[]> {
  const found = new Set<string>();
  // Only files directly in /dev/shm, by a plain name: what a manifest may ask a restore to write (store/confine.ts).
  const consider = (path: string) => {
    const name = basename(path);
    if (dirname(path) === root && isPlainName(name) && !/^link_remap\.\d+$/.test(name)) found.add(path);
  };
  for (const pid of pids) {
    for (const m of await readMaps(pid)) if (!m.deleted) consider(m.path);
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (target.startsWith("/") && !target.endsWith(" (deleted)")) consider(target);
    }
  }
  const files: string[] = [];
  for (const f of [...found].sort()) if ((await stat(f).catch(() => undefined))?.isFile()) files.push(f);
  return files;
}

export interface KeptFile {
  original: string;
  file: string;
  /** The original's permission bits, which CRIU checks at restore; the copy in the snapshot is root's alone. */
  mode?: number;
}

/** Copies `from` to `to` (created root's alone); returns `from`'s permission bits, for putting it back. */
async function keepCopy(from: string, to: string): Promise<number> {
  const { mode } = await stat(from);
  await copyFile(from, to);
  await chmod(to, PRIVATE_FILE);
  return mode & 0o7777;
}

/** Copies files into `<snapshotDir>/<sub>/`; with `remove`, deletes the originals (a dead tree's leftovers). */
export async function keepFiles(
  paths: string[],
  snapshotDir: string,
  sub: string,
  remove: boolean,
): Promise<KeptFile[]> {
  if (paths.length === 0) return [];
  await mkdir(join(snapshotDir, sub), { recursive: true, mode: PRIVATE_DIR });
  const kept: KeptFile[] = [];
  for (const [i, original] of paths.entries()) {
    const file = join(sub, `${i}-${basename(original)}`);
    const mode = await keepCopy(original, join(snapshotDir, file));
    if (remove) await rm(original, { force: true });
    kept.push({ original, file, mode });
  }
  return kept;
}

/** A file a restore put in place, by path and identity (so that only that very file is ever removed). */
export interface PlacedFile {
  path: string;
  dev: number;
  ino: number;
}

/**
 * Puts fresh copies of a snapshot's kept files (link_remap files, shared-memory files) where its images
 * expect them. Each is written under a temporary name and renamed into place, so a live process that still maps
 * an older file of that name keeps its own copy and never shares it with the restored one. Returns what it placed
 * and `remove()`, which removes each one that is still the file placed (a later restore of the same snapshot may
 * have put its own in its place since).
 *
 * Every path is checked first (store/confine.ts): the copy must be a regular file inside the snapshot, and the
 * target a /dev/shm name (`role` shm) or a link_remap.N file (`role` link-remap) reached through no symlinked
 * folder. The temporary file is created exclusively (never through a symlink) and the rename replaces a name,
 * never writing through a symlink there. A refused path fails before anything is written.
 */
export async function placeFiles(
  snapshotDir: string,
  kept: KeptFile[],
  role: "shm" | "link-remap",
): Promise<{ placed: PlacedFile[]; remove: () => Promise<void> }> {
  const sources: string[] = [];
  for (const k of kept) {
    sources.push(await resolveInSnapshot(snapshotDir, k.file));
    await checkPlacedPath(k.original, role);
  }
  const placed: PlacedFile[] = [];
  try {
    for (const [i, k] of kept.entries()) {
      await mkdir(dirname(k.original), { recursive: true });
      await removeDeadTemps(dirname(k.original));
      // Named after this process: one killed between the copy and the rename leaves a file the next one removes.
      const tmp = join(dirname(k.original), `.stasis-${process.pid}-${randomBytes(4).toString("hex")}`);
      const mode = k.mode ?? (await stat(sources[i]!)).mode & 0o7777;
      // Exclusive: never through a symlink someone put at that name. The mode is set through the file's own fd.
      await copyFile(sources[i]!, tmp, constants.COPYFILE_EXCL);
      let st;
      const fh = await open(tmp, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        await fh.chmod(mode); // CRIU checks the mode against the one it dumped
        st = await fh.stat();
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      } finally {
        await fh.close();
      }
      await rename(tmp, k.original);
      placed.push({ path: k.original, dev: st.dev, ino: st.ino });
    }
  } catch (err) {
    await removePlaced(placed); // invariant: a failed placing leaves none of its files behind
    throw err;
  }
  return { placed, remove: () => removePlaced(placed) };
}

/** Removes placeFiles' temporary files in `dir` whose process is gone (killed between its copy and its rename). */
async function removeDeadTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^\.stasis-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (m && !isAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}

/** Those of `paths` created at or after `sinceMs` (epoch ms), by identity: a server's own files, not older ones it
 *  opened. */
export async function createdSince(paths: string[], sinceMs: number): Promise<PlacedFile[]> {
  const out: PlacedFile[] = [];
  for (const path of paths) {
    const st = await stat(path).catch(() => undefined);
    if (st && st.birthtimeMs > 0 && st.birthtimeMs >= sinceMs) out.push({ path, dev: st.dev, ino: st.ino });
  }
  return out;
}

/** Removes each of `placed` that is still the very file placed there (a symlink put in its place is left alone). */
export async function removePlaced(placed: PlacedFile[]): Promise<void> {
  for (const p of placed) {
    const st = await lstat(p.path).catch(() => undefined);
    if (st?.isFile() && st.dev === p.dev && st.ino === p.ino) await rm(p.path, { force: true });
  }
}
