import { open, readFile, rm } from "node:fs/promises";
import { StasisError, fsError } from "../errors.js";

/**
 * Takes a lock file, created exclusively, holding the owner's pid. A lock whose owner is dead (a process killed
 * mid-way) is stale and taken over. When a live process holds it: with `wait`, poll until it is free; without,
 * throw `busy(owner)`. Returns the release, which removes the file (call it in finally).
 */
export async function lockFile(path: string, opts: { wait: boolean; busy?: (owner: number) => Error }): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(err, path, "take lock");
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (!(owner > 0 && isAlive(owner))) {
        await rm(path, { force: true });
        continue;
      }
      if (!opts.wait) throw opts.busy?.(owner) ?? new StasisError("E_SNAPSHOT_BUSY", `${path} is held by process ${owner}`);
      await new Promise((r) => setTimeout(r, 20));
    }
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
