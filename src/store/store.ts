import { mkdir, readdir, readFile, rename, rm, open, writeFile, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import { paths, stasisHome } from "../home.js";
import { parseManifest, type Manifest } from "./manifest.js";
import { isAlive, lockFile as lockFile_ } from "./lockfile.js";
import { exists } from "../files.js";
import { PRIVATE_DIR, PRIVATE_FILE, restrictTree } from "./private.js";
import { readStat } from "../proc/tree.js";

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
  return { name, dir, manifest: await parseManifest(text, `snapshot "${name}"`) };
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
    throw new StasisError("E_SNAPSHOT_NOT_FOUND", `no snapshot named "${name}"`, {
      hint: "list snapshots with `stasis ls`",
    });
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
): Promise<{
  dir: string;
  files: { path: string; size: number; role: string; chunkSize: number; sha256Chunks: string[] }[];
}> {
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
      busy: (owner) =>
        new StasisError("E_SNAPSHOT_BUSY", `snapshot "${name}" is being captured by process ${owner}`, {
          hint: "wait for that capture to finish, or stop it",
        }),
    });
    const dir = join(root, `.staging-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    await mkdir(dir, { mode: PRIVATE_DIR });
    const staging = new Staging(name, dir, finalDir, lockFile);
    await staging.noteOwner({});
    return staging;
  }

  /**
   * Records in the folder who owns it (this process, by pid and start time, so a reused pid is not taken for it)
   * and what else it must clean up if it dies (`extra`: the capture's server, its CRIU log), for `cleanStaging`.
   */
  async noteOwner(extra: Omit<StagingOwner, "pid" | "startTime">): Promise<void> {
    const self = await readStat(process.pid);
    const owner: StagingOwner = { ...this.owner, ...extra, pid: process.pid, startTime: self?.startTime ?? 0 };
    this.owner = owner;
    const file = join(this.dir, OWNER_FILE);
    await writeFile(`${file}.tmp`, JSON.stringify(owner) + "\n");
    await rename(`${file}.tmp`, file);
  }

  private owner: StagingOwner | undefined;

  async commit(manifest: Manifest): Promise<string> {
    await rm(join(this.dir, OWNER_FILE), { force: true }); // a snapshot has no owner process
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

/** Who owns a staging folder: the capturing process, and what it must clean up if it dies. */
export interface StagingOwner {
  pid: number;
  /** The owner's start time (/proc/PID/stat, clock ticks since boot): a pid reused by another process differs. */
  startTime: number;
  /** The server the capture launched, by pid and start time. */
  server?: { pid: number; startTime: number };
  /** The capture's CRIU dump log (it names the run whose network-lock table the dump made). */
  criuLog?: string;
}

const OWNER_FILE = "owner.json";

/**
 * Removes staging folders (and trash) left by captures whose process is gone: its pid no longer runs, or runs
 * another program started since (pid reuse). `onStale` runs first for each, with its owner record, to remove what
 * else that capture left (src/capture/leftovers.ts); a folder from before owner records falls back to the pid
 * in its name.
 */
export async function cleanStaging(
  home = stasisHome(),
  onStale?: (owner: StagingOwner) => Promise<void>,
): Promise<string[]> {
  const root = paths.snapshots(home);
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = /^\.staging-.+-(\d+)-[0-9a-f]{8}$/.exec(name) ?? /^\.trash-.+$/.exec(name);
    if (!m) continue;
    const pid = m[1] ? Number(m[1]) : 0;
    const owner = pid ? await readOwner(join(root, name)) : undefined;
    if (owner ? await sameProcess(owner.pid, owner.startTime) : pid && isAlive(pid)) continue;
    if (owner && onStale) await onStale(owner);
    await rm(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

async function readOwner(dir: string): Promise<StagingOwner | undefined> {
  const text = await readFile(join(dir, OWNER_FILE), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const o = JSON.parse(text) as StagingOwner;
    return typeof o.pid === "number" && typeof o.startTime === "number" ? o : undefined;
  } catch {
    return undefined; // half-written by a process killed mid-write: the pid in the folder's name decides
  }
}

/** True while `pid` runs and is the process that started at `startTime` (not a later one given the same pid). */
export async function sameProcess(pid: number, startTime: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X" && stat.startTime === startTime;
}

export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
