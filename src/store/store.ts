import { mkdir, readdir, readFile, rename, rm, open, writeFile, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import { paths, stasisHome } from "../home.js";
import { parseManifest, type Manifest } from "./manifest.js";
import { isAlive, lockFile as lockFile_ } from "./lockfile.js";
import { exists } from "../files.js";
import { PRIVATE_DIR, PRIVATE_FILE, restrictTree } from "./private.js";

export { isAlive };

/** Snapshot names are folder names and appear in URLs: keep them plain. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new StasisError("E_INVALID_NAME", `invalid snapshot name "${name}"`, {
      hint: "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 128 characters)",
    });
  }
  return name;
}

export interface Snapshot {
  name: string;
  dir: string;
  manifest: Manifest;
}

/** Reads a snapshot's manifest: E_SNAPSHOT_NOT_FOUND if there is none, E_MANIFEST_INVALID if it is damaged. */
export async function openSnapshot(name: string, home = stasisHome()): Promise<Snapshot> {
  checkName(name);
  const dir = paths.snapshot(name, home);
  const file = join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new StasisError("E_SNAPSHOT_NOT_FOUND", `no snapshot named "${name}" in ${paths.snapshots(home)}`, {
        hint: "list snapshots with `stasis ls`",
      });
    }
    throw fsError(err, file, "read manifest");
  }
  return { name, dir, manifest: parseManifest(text, `snapshot "${name}"`) };
}

export interface SnapshotListing {
  name: string;
  dir: string;
  manifest?: Manifest;
  /** Set when the manifest cannot be read: the snapshot is listed, marked damaged, never used. */
  error?: string;
}

export async function listSnapshots(home = stasisHome()): Promise<SnapshotListing[]> {
  let names: string[];
  try {
    names = await readdir(paths.snapshots(home));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw fsError(err, paths.snapshots(home), "list snapshots");
  }
  const out: SnapshotListing[] = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue; // staging and trash folders
    try {
      out.push(await openSnapshot(name, home));
    } catch (err) {
      out.push({ name, dir: paths.snapshot(name, home), error: (err as Error).message });
    }
  }
  return out;
}

/** Removes a snapshot: renamed away first (so it vanishes atomically from `ls`), then deleted. */
export async function removeSnapshot(name: string, home = stasisHome()): Promise<void> {
  checkName(name);
  const dir = paths.snapshot(name, home);
  try {
    await stat(dir);
  } catch {
    throw new StasisError("E_SNAPSHOT_NOT_FOUND", `no snapshot named "${name}"`, { hint: "list snapshots with `stasis ls`" });
  }
  const trash = join(paths.snapshots(home), `.trash-${name}-${randomBytes(4).toString("hex")}`);
  await rename(dir, trash).catch((err) => {
    throw fsError(err, dir, "remove snapshot");
  });
  await rm(trash, { recursive: true, force: true });
}

/** The files of a snapshot with absolute paths, for prefetch, residency and eviction. */
export async function snapshotFiles(
  name: string,
  home = stasisHome(),
): Promise<{ dir: string; files: { path: string; size: number; role: string; chunkSize: number; sha256Chunks: string[] }[] }> {
  const snap = await openSnapshot(name, home);
  return {
    dir: snap.dir,
    files: snap.manifest.files.map((f) => ({
      path: join(snap.dir, f.path),
      size: f.size,
      role: f.role,
      chunkSize: f.chunkSize,
      sha256Chunks: f.chunks,
    })),
  };
}

/**
 * A snapshot being written. Everything goes into a hidden staging folder; `commit` writes the manifest last,
 * syncs, and renames the folder into place, so a capture that fails or is killed half-way never appears as a
 * snapshot. `abort` (or a later `cleanStaging`) removes what was left.
 */
export class Staging {
  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly finalDir: string,
    private readonly lockFile: string,
  ) {}

  static async begin(name: string, home = stasisHome()): Promise<Staging> {
    checkName(name);
    const root = paths.snapshots(home);
    await mkdir(root, { recursive: true, mode: PRIVATE_DIR }).catch((err) => {
      throw fsError(err, root, "create snapshot store");
    });
    const finalDir = paths.snapshot(name, home);
    if (await exists(finalDir)) {
      throw new StasisError("E_SNAPSHOT_EXISTS", `a snapshot named "${name}" already exists`, {
        hint: `remove it first with \`stasis rm ${name}\`, or pick another name`,
      });
    }
    // One capture per name at a time: the lock file is created exclusively and holds the owner's pid.
    const lockFile = join(root, `.lock-${name}`);
    await lockFile_(lockFile, {
      wait: false,
      busy: (owner) => new StasisError("E_SNAPSHOT_BUSY", `snapshot "${name}" is being captured by process ${owner}`, { hint: "wait for that capture to finish, or stop it" }),
    });
    const dir = join(root, `.staging-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    await mkdir(dir, { mode: PRIVATE_DIR });
    return new Staging(name, dir, finalDir, lockFile);
  }

  async commit(manifest: Manifest): Promise<string> {
    // What others wrote into the folder (the engine's weights dump, tar) is made root's alone before it appears.
    await restrictTree(this.dir);
    const file = join(this.dir, "manifest.json");
    await writeFile(file, JSON.stringify(manifest, null, 2) + "\n", { mode: PRIVATE_FILE });
    await fsyncPath(file);
    await fsyncPath(this.dir);
    if (await exists(this.finalDir)) {
      throw new StasisError("E_SNAPSHOT_EXISTS", `a snapshot named "${this.name}" appeared while capturing`, {
        hint: "another process wrote it; remove one of them",
      });
    }
    await rename(this.dir, this.finalDir);
    await fsyncPath(join(this.finalDir, ".."));
    await rm(this.lockFile, { force: true });
    return this.finalDir;
  }

  async abort(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await rm(this.lockFile, { force: true });
  }
}

/** Removes staging folders and locks left by captures whose process is gone. */
export async function cleanStaging(home = stasisHome()): Promise<string[]> {
  const root = paths.snapshots(home);
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = /^\.staging-.+-(\d+)-[0-9a-f]{8}$/.exec(name) ?? /^\.trash-.+$/.exec(name);
    if (!m) continue;
    const pid = m[1] ? Number(m[1]) : 0;
    if (pid && isAlive(pid)) continue;
    await rm(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
