import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { stasisHome } from "../home.js";
import { lockFile } from "../store/lockfile.js";
import { PRIVATE_DIR } from "../store/private.js";
import type { Snapshot } from "../store/store.js";

/**
 * Serialises the CRIU step of concurrent restores of one snapshot that has link_remap or shared-memory files:
 * each restore puts its own copy of those files at the same paths (and CRIU removes the link_remap ones when
 * done). Snapshots without such files restore concurrently.
 */
export async function withRestoreLock<T>(snap: Snapshot, body: () => Promise<T>): Promise<T> {
  if (snap.manifest.linkRemaps.length === 0 && snap.manifest.shmFiles.length === 0) return body();
  const dir = join(stasisHome(), "locks");
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  const release = await lockFile(join(dir, `restore-${snap.name}.lock`), { wait: true });
  try {
    return await body();
  } finally {
    await release();
  }
}
