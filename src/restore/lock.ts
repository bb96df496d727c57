import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { stasisHome } from "../home.js";
import { isAlive } from "../store/store.js";
import { readFile } from "node:fs/promises";
import type { Snapshot } from "../store/store.js";

/**
 * Serialises the CRIU step of concurrent restores of one snapshot that has link_remap or shared-memory files:
 * each restore puts its own copy of those files at the same paths (and CRIU removes the link_remap ones when
 * done). Snapshots without such files restore concurrently.
 */
export async function withRestoreLock<T>(snap: Snapshot, body: () => Promise<T>): Promise<T> {
  if (snap.manifest.linkRemaps.length === 0 && snap.manifest.shmFiles.length === 0) return body();
  const dir = join(stasisHome(), "locks");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `restore-${snap.name}.lock`);
  for (;;) {
    try {
      const fh = await open(file, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (!(owner > 0 && isAlive(owner))) await rm(file, { force: true });
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await body();
  } finally {
    await rm(file, { force: true });
  }
}
