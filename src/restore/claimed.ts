import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Events } from "../events.js";
import { paths } from "../home.js";
import { criuTempFiles } from "../criu/temp-files.js";
import { openSnapshot, type Snapshot } from "../store/store.js";
import { checkSnapshotFiles } from "../store/check-files.js";
import { prepareHome } from "../store/home-guard.js";
import { removeDeadCaptures } from "../capture/leftovers.js";
import { claimRestore, type Claim } from "../instances/claim.js";
import { instanceDir, newInstanceId, selfAsOwner } from "../instances/instances.js";
import { supervise, type Supervisor } from "../instances/supervisor.js";

/** A snapshot opened for a restore, its claim recorded, the restore's supervisor started. */
export interface Claimed {
  snap: Snapshot;
  claim: Claim;
  supervisor: Supervisor;
}

/**
 * Opens snapshot `name` for a restore and claims what the restore will hold (instances/claim.ts), under a supervisor
 * started first: a restore killed from then on leaves nothing, not even its folder. A refused claim removes the folder
 * (there is nothing in it to show) and releases the supervisor.
 */
export async function openClaimed(name: string, events: Events): Promise<Claimed> {
  await prepareHome((m) => events.log(m, "warn"));
  const snap = await openSnapshot(name);
  // A dead capture's server may hold the address (and its staging folder the disk): removed first.
  await removeDeadCaptures(events);
  // Before CRIU ever starts: every file where the manifest says, at its size (a stat each, whatever --verify).
  await checkSnapshotFiles(snap.dir, snap.manifest.files);
  const id = newInstanceId();
  const supervisor = supervise(id, paths.instance(id));
  try {
    const inst = await instanceDir(id);
    const claim: Claim = {
      id,
      snapshot: name,
      origin: "restore",
      pid: 0,
      url: snap.manifest.server.url,
      createdAt: new Date().toISOString(),
      ...inst,
      state: "restoring",
      owner: await selfAsOwner(),
      listeners: snap.manifest.listeners,
      criuFiles: await criuTempFiles(join(snap.dir, "images")),
    };
    await claimRestore(claim, events);
    return { snap, claim, supervisor };
  } catch (err) {
    await rm(paths.instance(id), { recursive: true, force: true });
    supervisor.release();
    throw err;
  }
}
