import { link, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { StasisError, fsError } from "../errors.js";

/**
 * Takes a lock file holding the owner's pid. A lock whose owner is dead (a process killed mid-way) is stale and taken
 * over. When a live process holds it: with `wait`, poll until it is free; without, throw `busy(owner)`. Returns the
 * release, which removes the file if it is still this lock (call it in finally).
 *
 * The lock appears with its pid already in it: written to a file of this process's own, then hard-linked into place
 * (atomic, and it fails if the lock exists). A lock created empty and then written let a second process read it
 * empty, judge it stale and take it too: two restores claimed one address at once that way. A stale lock is judged
 * again, by one taker at a time, before it is removed (removeStale).
 */
export async function lockFile(
  path: string,
  opts: { wait: boolean; busy?: (owner: number) => Error },
): Promise<() => Promise<void>> {
  await removeDeadOwnFiles(path);
  const mine = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(mine, String(process.pid), { flag: "wx", mode: 0o600 }).catch((err) => {
    throw fsError(err, path, "take lock");
  });
  try {
    for (;;) {
      try {
        await link(mine, path);
        const held = await stat(path);
        return async () => {
          const now = await stat(path).catch(() => undefined);
          if (now && now.ino === held.ino && now.dev === held.dev) await rm(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(err, path, "take lock");
        const text = await readFile(path, "utf8").catch(() => undefined);
        if (text === undefined) continue; // released meanwhile: try again
        const owner = Number(text.trim());
        if (!(owner > 0 && isAlive(owner))) {
          await removeStale(path, text);
          continue;
        }
        if (!opts.wait) {
          throw opts.busy?.(owner) ?? new StasisError("E_SNAPSHOT_BUSY", `${path} is held by process ${owner}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } finally {
    await rm(mine, { force: true }); // the lock, if taken, lives on under `path`
  }
}

/** Removes the files of this kind (`<lock>.<pid>.<hex>`) a process killed mid-way left. */
async function removeDeadOwnFiles(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)\.[0-9a-f]{8}$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : "");
    if (m && !isAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}

/**
 * Removes the stale lock at `path` if it still says `judged`. One taker at a time does (a `.takeover` file, created
 * exclusively; one older than 5 s is a killed taker's), and only dead owners' locks are removed, which no one else
 * removes: so the lock read again here cannot have been replaced by a fresh one before it is removed.
 */
async function removeStale(path: string, judged: string): Promise<void> {
  const marker = `${path}.takeover`;
  try {
    await writeFile(marker, String(process.pid), { flag: "wx", mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(err, path, "take over a stale lock");
    const st = await stat(marker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 5_000) await rm(marker, { force: true });
    await new Promise((r) => setTimeout(r, 5)); // another taker is at it: look again
    return;
  }
  try {
    if ((await readFile(path, "utf8").catch(() => undefined)) === judged) await rm(path, { force: true });
  } finally {
    await rm(marker, { force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
