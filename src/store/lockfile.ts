import { link, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
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
 * empty, judge it stale and take it too: two restores claimed one address at once that way. A stale lock is moved
 * aside under a name of this process's own before it is judged again, so a fresh lock that replaced it meanwhile is
 * put back, not removed.
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
        const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
        if (!(owner > 0 && isAlive(owner))) {
          await takeOverStale(path, owner);
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

/** Removes the files of this kind (`<lock>.<pid>.<hex>`, `<lock>.stale.<pid>.<hex>`) a process killed mid-way left. */
async function removeDeadOwnFiles(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(?:stale\.)?(\d+)\.[0-9a-f]{8}$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : "");
    if (m && !isAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}

/** Removes the stale lock at `path` (judged to be dead `owner`'s), unless another took its place meanwhile. */
async function takeOverStale(path: string, owner: number): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch {
    return; // gone already: another waiter took it over
  }
  const found = Number((await readFile(aside, "utf8").catch(() => "")).trim());
  // A live process's fresh lock, moved aside by mistake: back in place (it is free, or taken by a third: rare).
  if (found !== owner && found > 0 && isAlive(found)) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
