import { join } from "node:path";
import { removeSnapshot } from "../store/store.js";
import { listInstances } from "../instances/instances.js";
import { StasisError } from "../errors.js";
import { lockTableOfLog, removeLockTable } from "../criu/network-lock.js";

export interface RmResult {
  removed: string[];
  instancesStillRunning: string[];
  /** CRIU network-lock tables the snapshots owned (never restored) and that were removed with them. */
  networkLocksRemoved: string[];
  warnings: string[];
}

/**
 * Removes snapshots. A running instance restored from a snapshot does not need its files any more (CRIU restored
 * its memory), so removal is allowed; each name is checked before any is removed, so a typo removes nothing.
 * A snapshot owns the nftables table its dump left (until a restore unlocks it): it goes with the snapshot.
 */
export async function rm(opts: { names: string[] }): Promise<RmResult> {
  const { openSnapshot } = await import("../store/store.js");
  const tables = new Map<string, string | undefined>();
  for (const name of opts.names) {
    try {
      const snap = await openSnapshot(name);
      // Snapshots from before the manifest named the table: the dump's log (kept in the snapshot) names its run.
      const fromLog = () => lockTableOfLog(join(snap.dir, "logs", "criu-dump.log"));
      tables.set(name, snap.manifest.criu.networkLockTable ?? (await fromLog()));
    } catch (err) {
      // A damaged manifest must not stop its own removal.
      if (!(err instanceof StasisError && err.code === "E_MANIFEST_INVALID")) throw err;
    }
  }
  const networkLocksRemoved: string[] = [];
  const warnings: string[] = [];
  for (const name of opts.names) {
    const table = tables.get(name);
    if (table) {
      await removeLockTable(table).then(
        (was) => was && networkLocksRemoved.push(table),
        (err: Error) => warnings.push(`could not remove the network-lock table ${table} of "${name}": ${err.message}`),
      );
    }
    await removeSnapshot(name);
  }
  const running = (await listInstances()).filter((i) => i.running && opts.names.includes(i.snapshot)).map((i) => i.id);
  return { removed: opts.names, instancesStillRunning: running, networkLocksRemoved, warnings };
}
