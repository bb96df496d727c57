import type { Dirent } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { StasisError, fsError } from "../errors.js";
import { notAFile } from "./_files.js";

/** A file that prefetch, residency or evict will act on; snapshot files carry what the manifest knows. */
export interface TargetFile {
  path: string;
  size?: number;
  chunkSize?: number;
  sha256Chunks?: string[];
}

export interface Targets {
  files: TargetFile[];
  /** Set when the files came from a snapshot. */
  snapshot?: { name: string; dir: string };
}

/** What the store's `snapshotFiles` returns (src/store/store.ts); injectable for tests. */
export type SnapshotFiles = (
  name: string,
) => Promise<{ dir: string; files: { path: string; size: number; chunkSize?: number; sha256Chunks?: string[] }[] }>;

const loadSnapshotFiles: SnapshotFiles = async (name) => (await import("../store/store.js")).snapshotFiles(name);

/**
 * The files a page-cache command acts on. Without a snapshot: the given paths, directories expanded to the
 * regular files under them (sorted, symlinked directories not followed). With a snapshot: its files in the
 * manifest's order, or those at or under the given paths, which must lie inside the snapshot's folder
 * (relative paths are taken from there): E_PATH_OUTSIDE_SNAPSHOT otherwise.
 *
 * @example
 *   await resolveTargets({ paths: ["/models/llama"] }, "prefetch");   // every file under /models/llama
 *   await resolveTargets({ paths: ["images"], snapshot: "llama" }, "prefetch"); // the snapshot's images
 */
export async function resolveTargets(
  spec: { paths: string[]; snapshot?: string },
  doing: string,
  deps: { snapshotFiles?: SnapshotFiles } = {},
): Promise<Targets> {
  if (spec.snapshot === undefined) {
    if (spec.paths.length === 0) {
      throw new StasisError("E_USAGE", `${doing}: name files or directories, or a snapshot with --snapshot NAME`);
    }
    const files: TargetFile[] = [];
    const seen = new Set<string>();
    for (const p of spec.paths) {
      for (const path of await expand(resolve(p), doing)) {
        if (!seen.has(path)) files.push({ path });
        seen.add(path);
      }
    }
    return { files };
  }
  const snap = await (deps.snapshotFiles ?? loadSnapshotFiles)(spec.snapshot);
  const snapshot = { name: spec.snapshot, dir: snap.dir };
  if (spec.paths.length === 0) return { files: snap.files, snapshot };
  const root = await realpath(snap.dir).catch((err: unknown) => {
    throw fsError(err, snap.dir, doing);
  });
  const wanted = new Set<string>();
  for (const p of spec.paths) {
    const rel = await insideSnapshot(p, snap.dir, root, spec.snapshot);
    const matches = snap.files.filter((f) => {
      const fr = relative(snap.dir, f.path);
      return rel === "" || fr === rel || fr.startsWith(rel + sep);
    });
    if (matches.length === 0) {
      throw new StasisError("E_FILE_NOT_FOUND", `${doing}: ${p} is not a file of snapshot "${spec.snapshot}"`, {
        hint: `\`stasis inspect ${spec.snapshot}\` lists its files`,
        details: { path: p },
      });
    }
    for (const m of matches) wanted.add(m.path);
  }
  return { files: snap.files.filter((f) => wanted.has(f.path)), snapshot };
}

/** `p` relative to the snapshot's folder, after following symlinks; throws if it leads outside. */
async function insideSnapshot(p: string, dir: string, root: string, name: string): Promise<string> {
  const abs = isAbsolute(p) ? p : join(dir, p);
  const outside = () =>
    new StasisError("E_PATH_OUTSIDE_SNAPSHOT", `${p} is not inside snapshot "${name}" (${dir})`, {
      hint: "with --snapshot, name paths inside the snapshot's folder (relative paths are taken from there), or drop --snapshot",
      details: { path: p, snapshotDir: dir },
    });
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    // A path that does not exist is "outside" if it would be even lexically; otherwise it is just missing.
    const lexical = relative(dir, abs);
    if (lexical.startsWith("..") || isAbsolute(lexical)) throw outside();
    throw fsError(err, abs, `snapshot "${name}"`);
  }
  const rel = relative(root, real);
  if (rel.startsWith("..") || isAbsolute(rel)) throw outside();
  return rel;
}

/** A path -> the regular files it names: itself, or everything under it if it is a directory. */
async function expand(path: string, doing: string): Promise<string[]> {
  const st = await stat(path).catch((err: unknown) => {
    throw fsError(err, path, doing);
  });
  if (st.isFile()) return [path];
  if (!st.isDirectory()) throw notAFile(path, st, doing);
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, dir, doing);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
      // A symlink counts if it leads to a regular file; symlinked directories are not followed (no loops).
      else if (
        e.isSymbolicLink() &&
        (await stat(p).then(
          (s) => s.isFile(),
          () => false,
        ))
      )
        out.push(p);
    }
  };
  await walk(path);
  return out;
}
