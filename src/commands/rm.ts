import { removeSnapshot } from "../store/store.js";
import { listInstances } from "../instances/instances.js";
import { StasisError } from "../errors.js";

/**
 * Removes snapshots. A running instance restored from a snapshot does not need its files any more (CRIU restored
 * its memory), so removal is allowed; each name is checked before any is removed, so a typo removes nothing.
 */
export async function rm(opts: { names: string[] }): Promise<{ removed: string[]; instancesStillRunning: string[] }> {
  const { openSnapshot } = await import("../store/store.js");
  for (const name of opts.names) {
    try {
      await openSnapshot(name);
    } catch (err) {
      // A damaged manifest must not stop its own removal.
      if (!(err instanceof StasisError && err.code === "E_MANIFEST_INVALID")) throw err;
    }
  }
  for (const name of opts.names) await removeSnapshot(name);
  const running = (await listInstances()).filter((i) => i.running && opts.names.includes(i.snapshot)).map((i) => i.id);
  return { removed: opts.names, instancesStillRunning: running };
}
