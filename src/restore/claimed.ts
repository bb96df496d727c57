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
import { allInOrder, type Deferred, type Pipeline } from "../pipeline/pipeline.js";
import { claimedPlacement, refuseMissingAddresses, type Placement } from "../netns/placement.js";
import { SHM_ROOT } from "../store/confine.js";
import { listeners } from "../proc/net.js";

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
 * The start of step "open": the store made usable and snapshot `name`'s manifest read, or `given`, a snapshot still
 * arriving from a store (restore/from-remote.ts), restored from its staging folder. The preflight needs no more than
 * this, and runs beside the claim (restore.ts).
 */
export async function openForRestore(p: Pipeline, name: string, given?: Snapshot): Promise<Snapshot> {
  await prepareHome((m) => p.events.log(m, "warn"));
  return given ?? (await openSnapshot(name));
}

/**
 * Step "open": claims what a restore of `snap` will hold (instances/claim.ts), under a supervisor started first: a
 * restore killed from then on leaves nothing, not even its folder. A refused claim removes the folder (there is
 * nothing in it to show); a restore that fails later drops the record and keeps the folder (its logs, which error
 * hints name). The supervisor is released when the restore ends, either way.
 */
export async function claimSnapshot(
  p: Pipeline,
  name: string,
  snap: Snapshot,
  placement?: Placement,
): Promise<Claimed> {
  const { events } = p;
  if (!placement) refuseMissingAddresses(snap.manifest.addresses);
  // Side by side, none needing another: a dead capture's leftovers removed (its server may hold the address, its
  // staging folder the disk), every file where the manifest says at its size before CRIU ever starts (a stat each,
  // whatever --verify), the files CRIU's restore will make.
  const listening = listeners(); // the claim's check of the ports reads them here, off its lock's time
  const checks = allInOrder(
    removeDeadCaptures(events),
    checkSnapshotFiles(snap.dir, snap.manifest.files),
    criuTempFiles(join(snap.dir, "images")),
    selfAsOwner(),
  );
  const id = newInstanceId();
  const supervisor = supervise(id, paths.instance(id));
  const supervised = p.defer("the restore's supervisor", () => supervisor.release());
  const folder = p.defer("the instance folder", () => rm(paths.instance(id), { recursive: true, force: true }));
  const [[, , criuFiles, owner], inst] = await allInOrder(checks, instanceDir(id));
  const claim: Claim = {
    id,
    snapshot: name,
    origin: "restore",
    pid: 0,
    url: snap.manifest.server.url,
    createdAt: new Date().toISOString(),
    ...inst,
    state: "restoring",
    owner,
    listeners: snap.manifest.listeners,
    criuFiles,
  };
  if (placement) {
    claim.placement = claimedPlacement(placement, snap.manifest.server.url);
    // Its /dev/shm is its own (netns/private-shm.ts): CRIU's files there are no other restore's business.
    claim.criuFiles = claim.criuFiles.filter((f) => !f.startsWith(SHM_ROOT + "/"));
  }
  await claimRestore(claim, events, undefined, listening);
  folder.keep();
  const record = p.defer("the restore's claim", () => dropRecord(claim));
  return { snap, claim, supervisor, record, supervised };
}
