import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, posix } from "node:path";
import { StasisError } from "../errors.js";

/**
 * Every path a manifest names is confined, because a manifest is data anyone who could write a snapshot folder
 * controls, and a restore runs as root: a snapshot's own files lie inside its folder (relative, no `..`, no
 * symlink anywhere on the way), and the files a restore puts back by path are a shared-memory file of its own
 * (`/dev/shm/NAME`, NAME a plain name) or a CRIU link_remap file (`DIR/link_remap.N`). The manifest schema checks
 * the spelling (the `is*` functions here); `resolveInSnapshot` and `checkPlacedPath` check the disk again right
 * before each use, as the folder may have changed since it was parsed.
 */

/** Where shared-memory files a snapshot carries are put back. */
export const SHM_ROOT = "/dev/shm";

/** A path relative to a snapshot folder, already normal: "images/pages-1.img", never "../x", "/x", "a//b", "./a". */
export function isSnapshotRelative(p: string): boolean {
  return (
    p.length > 0 &&
    !isAbsolute(p) &&
    !p.includes("\0") &&
    !p.includes("\\") &&
    posix.normalize(p) === p &&
    !p.endsWith("/") &&
    p.split("/").every((part) => part !== "" && part !== "." && part !== "..")
  );
}

/** A single file name: no `/`, not `.` or `..`, no NUL. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\0]/.test(name) && name !== "." && name !== "..";
}

/** `/dev/shm/NAME`, NAME a plain name. */
export function isShmPath(p: string): boolean {
  return dirname(p) === SHM_ROOT && isPlainName(basename(p)) && p === join(SHM_ROOT, basename(p));
}

/** An absolute, normal path whose last part is CRIU's `link_remap.N`, the only name CRIU gives such a file. */
export function isLinkRemapPath(p: string): boolean {
  return isAbsolute(p) && !p.includes("\0") && posix.normalize(p) === p && /^link_remap\.\d+$/.test(basename(p));
}

/**
 * The absolute path of `rel` inside snapshot folder `dir`, once the disk confirms it: a regular file (or, with
 * `folder`, a folder) reached through no symlink. E_PATH_OUTSIDE_SNAPSHOT otherwise; E_FILE_NOT_FOUND when missing.
 */
export async function resolveInSnapshot(dir: string, rel: string, opts: { folder?: boolean } = {}): Promise<string> {
  if (!isSnapshotRelative(rel)) throw outside(dir, rel, "not a plain relative path inside the snapshot");
  const path = join(dir, rel);
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") {
      throw new StasisError("E_FILE_NOT_FOUND", `snapshot file ${rel} is missing`, {
        hint: "the snapshot is damaged; capture it again",
        details: { path },
      });
    }
    throw outside(dir, rel, err.message);
  });
  if (st.isSymbolicLink()) throw outside(dir, rel, "a symlink");
  if (opts.folder ? !st.isDirectory() : !st.isFile()) {
    throw outside(dir, rel, opts.folder ? "not a folder" : "not a regular file");
  }
  // A symlinked folder on the way (images -> /etc) shows as a real path elsewhere.
  const [real, root] = await Promise.all([realpath(path), realpath(dir)]);
  if (real !== join(root, rel)) throw outside(dir, rel, `it leads to ${real}`);
  return path;
}

/**
 * Checks, right before a restore writes `path` (a shared-memory or link_remap file it puts back): its spelling, and
 * that no folder on the way is a symlink (a rename into `/dev/shm` -> `/etc` would land in /etc).
 */
export async function checkPlacedPath(path: string, role: "shm" | "link-remap"): Promise<void> {
  const ok = role === "shm" ? isShmPath(path) : isLinkRemapPath(path);
  if (!ok) {
    const expected = role === "shm" ? "/dev/shm/NAME" : "link_remap.N";
    const message = `the snapshot asks to write ${path}, which is not a ${expected} file`;
    throw new StasisError("E_PATH_OUTSIDE_SNAPSHOT", message, {
      hint: "the manifest was altered; do not restore this snapshot, capture it again",
      details: { path, role },
    });
  }
  const dir = dirname(path);
  const real = await realpath(dir).catch(() => dir); // a missing folder is created plainly, without symlinks
  if (real !== dir) {
    const message = `the snapshot asks to write ${path}, but ${dir} leads to ${real}`;
    throw new StasisError("E_PATH_OUTSIDE_SNAPSHOT", message, {
      hint: "a folder on the way is a symlink; remove it or capture the snapshot again",
      details: { path, role, real },
    });
  }
}

function outside(dir: string, rel: string, why: string): StasisError {
  return new StasisError("E_PATH_OUTSIDE_SNAPSHOT", `snapshot file ${JSON.stringify(rel)} is refused: ${why}`, {
    hint: "a snapshot's files must lie inside its folder; the snapshot was altered, capture it again",
    details: { dir, path: rel },
  });
}
