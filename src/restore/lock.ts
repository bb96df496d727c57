import { stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { lockFile } from "../store/lockfile.js";
import type { Snapshot } from "../store/store.js";
import type { KeptFile } from "../criu/kept-files.js";

/**
 * Serialises the CRIU step of concurrent restores that put files at the same paths: each restore puts its own copy of
 * its snapshot's link_remap and shared-memory files where the images expect them, and CRIU removes the link_remap ones
 * when done. The paths are not the snapshot's own: CRIU numbers link_remap files by its file ids, which repeat across
 * snapshots (two snapshots of one server both used /dev/shm/link_remap.36, and restoring them at once failed with
 * "Couldn't unlink remap"). So there is one lock per path, taken in sorted order (no two restores wait on each other);
 * snapshots without such files restore concurrently. The lock file sits beside the path (`.stasis-lock-<name>`): the
 * path is the machine's, whatever STASIS_HOME each restore uses.
 */
export async function withRestoreLock<T>(
  snap: Snapshot,
  body: () => Promise<T>,
  onHost: KeptFile[] = [...snap.manifest.linkRemaps, ...snap.manifest.shmFiles],
): Promise<T> {
  // `onHost`: the kept files this restore puts on the host's paths (a namespaced one has its own /dev/shm).
  const files = [...new Set(onHost.map((f) => f.original))].sort();
  if (files.length === 0) return body();
  const releases: (() => Promise<void>)[] = [];
  try {
    for (const f of files) {
      // A folder that is not there yet has no other restore in it (placeFiles makes it, and checks it).
      if (!(await stat(dirname(f)).catch(() => undefined))?.isDirectory()) continue;
      releases.push(await lockFile(join(dirname(f), `.stasis-lock-${basename(f)}`), { wait: true }));
    }
    return await body();
  } finally {
    for (const release of releases.reverse()) await release();
  }
}
