import { rm } from "node:fs/promises";
import { join } from "node:path";
import { paths } from "../home.js";
import { criuTempFiles } from "../criu/temp-files.js";
import { openSnapshot, type Snapshot } from "../store/store.js";
import { checkSnapshotFiles } from "../store/check-files.js";
import { prepareHome } from "../store/home-guard.js";
import { removeDeadCaptures } from "../capture/leftovers.js";
import { claimRestore, type Claim } from "../instances/claim.js";
import { dropRecord, instanceDir, newInstanceId, selfAsOwner } from "../instances/instances.js";
import { supervise, type Supervisor } from "../instances/supervisor.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";
import { claimedPlacement, type Placement } from "../netns/placement.js";
import { SHM_ROOT } from "../store/confine.js";

/** A snapshot opened for a restore, its claim recorded, the restore's supervisor started. */
export interface Claimed {
  snap: Snapshot;
  claim: Claim;
  supervisor: Supervisor;
  /** The claim's record, dropped should the restore fail; kept once the record names the serving instance. */
  record: Deferred;
  /** The supervisor's release as the restore ends; kept where the restore's result still needs it (a parked tree,
   *  restore/park.ts, whose supervisor ends it should the daemon holding it die). */
  supervised: Deferred;
}

/**
 * Step "open": opens snapshot `name` for a restore and claims what the restore will hold (instances/claim.ts), under a
 * supervisor started first: a restore killed from then on leaves nothing, not even its folder. A refused claim removes
 * the folder (there is nothing in it to show); a restore that fails later drops the record and keeps the folder (its
 * logs, which error hints name). The supervisor is released when the restore ends, either way. `given`: a snapshot
 * still arriving from a store (restore/from-remote.ts), restored from its staging folder.
 */
export async function claimSnapshot(
  p: Pipeline,
  name: string,
  given?: Snapshot,
  placement?: Placement,
): Promise<Claimed> {
  const { events } = p;
  await prepareHome((m) => events.log(m, "warn"));
  const snap = given ?? (await openSnapshot(name));
  // A dead capture's server may hold the address (and its staging folder the disk): removed first.
  await removeDeadCaptures(events);
  // Before CRIU ever starts: every file where the manifest says, at its size (a stat each, whatever --verify).
  await checkSnapshotFiles(snap.dir, snap.manifest.files);
  const id = newInstanceId();
  const supervisor = supervise(id, paths.instance(id));
  const supervised = p.defer("the restore's supervisor", () => supervisor.release());
  const folder = p.defer("the instance folder", () => rm(paths.instance(id), { recursive: true, force: true }));
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
  if (placement) {
    claim.placement = claimedPlacement(placement, snap.manifest.server.url);
    // Its /dev/shm is its own (netns/private-shm.ts): CRIU's files there are no other restore's business.
    claim.criuFiles = claim.criuFiles.filter((f) => !f.startsWith(SHM_ROOT + "/"));
  }
  await claimRestore(claim, events);
  folder.keep();
  const record = p.defer("the restore's claim", () => dropRecord(claim));
  return { snap, claim, supervisor, record, supervised };
}
