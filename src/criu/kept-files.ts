import { copyFile, mkdir, readFile, readdir, readlink, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

/**
 * Files a snapshot must carry because CRIU's images refer to them by path only.
 *
 * CRIU's --link-remap: a file the server has open or mapped under a name that was unlinked (glibc's sem_open
 * maps `/dev/shm/sem.XXXXXX` and unlinks that temporary name) is hard-linked back at dump time as
 * `<dir>/link_remap.<N>`, and the images refer to that path. Restore needs the file there again, and removes
 * it when done. So capture keeps a copy of each such file in the snapshot and deletes the link (it would
 * otherwise leak in /dev/shm), and restore puts a fresh copy in place before CRIU runs.
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
    const maps = await readFile(`/proc/${pid}/maps`, "utf8").catch(() => "");
    for (const line of maps.split("\n")) {
      // addr perms offset dev inode path (deleted)
      const m = /^\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\/.*) \(deleted\)$/.exec(line);
      if (m) add(m[2]!, Number(m[1]));
    }
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (!target.startsWith("/") || !target.endsWith(" (deleted)")) continue;
      const st = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (st) add(target.slice(0, -" (deleted)".length), st.ino);
    }
  }
  return out;
}

/** The link_remap files CRIU made for those inodes. */
export async function findLinkRemaps(unlinked: Map<string, Set<number>>): Promise<string[]> {
  const found: string[] = [];
  for (const [dir, inodes] of unlinked) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!/^link_remap\.\d+$/.test(name)) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st && inodes.has(st.ino)) found.push(join(dir, name));
    }
  }
  return found.sort();
}

/** Copies link_remap files into `<snapshotDir>/link-remap/` and removes them from where CRIU left them. */
export async function keepLinkRemaps(found: string[], snapshotDir: string): Promise<KeptFile[]> {
  return keepFiles(found, snapshotDir, "link-remap", true);
}

/**
 * Files in shared-memory folders (/dev/shm) that the tree has open or mapped under their own names, such
 * as vLLM's shared-memory queues (`psm_*`). CRIU records such files by path, not content, so they must exist
 * at restore with the contents they had: capture keeps a copy.
 */
export async function sharedMemoryFiles(pids: number[], roots = ["/dev/shm/"]): Promise<string[]> {
  const found = new Set<string>();
  const consider = (path: string) => {
    if (roots.some((r) => path.startsWith(r)) && !/\/link_remap\.\d+$/.test(path)) found.add(path);
  };
  for (const pid of pids) {
    const maps = await readFile(`/proc/${pid}/maps`, "utf8").catch(() => "");
    for (const line of maps.split("\n")) {
      const m = /^\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\/\S.*)$/.exec(line);
      if (m && !m[1]!.endsWith(" (deleted)")) consider(m[1]!);
    }
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
}

/** Copies files into `<snapshotDir>/<sub>/`; with `remove`, deletes the originals (a dead tree's leftovers). */
export async function keepFiles(paths: string[], snapshotDir: string, sub: string, remove: boolean): Promise<KeptFile[]> {
  if (paths.length === 0) return [];
  await mkdir(join(snapshotDir, sub), { recursive: true });
  const kept: KeptFile[] = [];
  for (const [i, original] of paths.entries()) {
    const file = join(sub, `${i}-${basename(original)}`);
    await copyFile(original, join(snapshotDir, file));
    if (remove) await rm(original, { force: true });
    kept.push({ original, file });
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
 */
export async function placeFiles(snapshotDir: string, remaps: KeptFile[]): Promise<{ placed: PlacedFile[]; remove: () => Promise<void> }> {
  const placed: PlacedFile[] = [];
  for (const r of remaps) {
    await mkdir(dirname(r.original), { recursive: true });
    const tmp = join(dirname(r.original), `.stasis-${randomBytes(4).toString("hex")}`);
    await copyFile(join(snapshotDir, r.file), tmp);
    const st = await stat(tmp);
    await rename(tmp, r.original);
    placed.push({ path: r.original, dev: st.dev, ino: st.ino });
  }
  return { placed, remove: () => removePlaced(placed) };
}

/** Removes each of `placed` that is still the file that was placed there. */
export async function removePlaced(placed: PlacedFile[]): Promise<void> {
  for (const p of placed) {
    const st = await stat(p.path).catch(() => undefined);
    if (st && st.dev === p.dev && st.ino === p.ino) await rm(p.path, { force: true });
  }
}
