import { join } from "node:path";
import { StasisError } from "../errors.js";
import { criuRestore, type CriuRestoreSettings, type RestoreResult as CriuRestored } from "../criu/restore.js";
import { placeFiles, removePlaced, type PlacedFile } from "../criu/kept-files.js";
import { killTree, recordInstance } from "../instances/instances.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";
import { timeWaitOn, waitForTimeWait } from "../proc/address.js";
import { withRestoreLock } from "./lock.js";
import type { Claimed } from "./claimed.js";
import type { Here } from "./preflight.js";
import { prepareNamespacedCriu, unixPathRaced } from "../netns/placement.js";
import type { InstancePlacement, NamespacedRestore } from "../netns/placement.js";
import { reaperCommand } from "./foreground.js";

/** The process tree CRIU restored, and what it holds; ended should the restore fail, kept once it serves. */
export interface RestoredTree {
  /** Host pid of the tree's root. */
  pid: number;
  /** Host pid of its namespace's init. */
  nsInit: number;
  /** The shared-memory files put in place for it: they stay while the instance lives (stasis stop removes them). */
  shmFiles: PlacedFile[];
  /** The tree and its files, on the restore's cleanup stack. */
  held: Deferred[];
  /** A namespaced restore (`--publish`, `--netns`): the URL it answers at from here, and its placement. */
  url?: string;
  placement?: InstancePlacement;
}

/**
 * Step "criu-restore": puts the snapshot's link_remap and shared-memory files where its images expect them (under a
 * lock per path, lock.ts) and has CRIU restore the tree. A listener CRIU could not bind because a server stopped
 * moments ago left connections in TIME_WAIT on its port is waited out and the restore run once more. `leaveStopped`:
 * the tree is left stopped (a parked instance, park.ts).
 */
export async function restoreTree(
  p: Pipeline,
  claimed: Claimed,
  here: Here,
  settings: CriuRestoreSettings,
  opts: { leaveStopped?: boolean; foreground?: boolean } = {},
): Promise<RestoredTree> {
  const { snap, claim } = claimed;
  const m = snap.manifest;
  // A namespaced restore's /dev/shm files go to its own /dev/shm (netns/private-shm.ts), the rest to the host's; its
  // forwarder starts now, to be told the namespace once CRIU is done.
  let ns: NamespacedRestore | undefined;
  let forwarder: Deferred | undefined;
  if (claim.placement) {
    ns = await prepareNamespacedCriu(
      claim.placement,
      { dir: snap.dir, kept: [...m.shmFiles, ...m.linkRemaps], addresses: m.addresses },
      claim.dir,
    );
    forwarder = p.defer("the forwarder", ns.abort);
  }
  const [shmFiles, remapFiles] = ns ? [[], ns.rest] : [m.shmFiles, m.linkRemaps];
  const criu = {
    ...(ns ? { command: ns.command } : {}),
    ...(opts.foreground ? { execCmd: reaperCommand(claim.dir) } : {}),
  };
  const restored = await withRestoreLock(snap, async () => {
    // CRIU needs the link_remap files only while it restores; the shared-memory ones while the instance lives.
    const shm = await placeFiles(snap.dir, shmFiles, "shm");
    const shmHeld = p.defer("the shared-memory files", () => removePlaced(shm.placed));
    let linkRemaps = await placeFiles(snap.dir, remapFiles, "link-remap");
    // The record names them before CRIU runs: a restore killed from here on leaves files its reaper removes.
    const noteFiles = () => recordInstance({ ...claim, placedFiles: [...shm.placed, ...linkRemaps.placed] });
    try {
      await noteFiles();
      let restored: CriuRestored | undefined;
      for (let attempt = 1; !restored; attempt++) {
        try {
          restored = await runCriu(p, claimed, here, settings, { ...criu, leaveStopped: opts.leaveStopped });
        } catch (err) {
          // A failed CRIU restore leaves nothing: after the wait, the same restore with fresh copies of the files. Or
          // a replica's CRIU raced another's on a unix socket's path (placement.ts): again after a moment, a few
          // times (three or more replicas at once can collide more than once).
          const raced = ns !== undefined && attempt < RACED_ATTEMPTS && unixPathRaced(err);
          if (!raced && (attempt > 1 || !(await addressInTimeWait(err, m.listeners)))) throw err;
          if (raced) await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
          else await waitForTimeWait(m.listeners, p.events, { signal: p.signal });
          await linkRemaps.remove(); // the failed attempt may have used them
          linkRemaps = await placeFiles(snap.dir, remapFiles, "link-remap");
          await noteFiles();
        }
      }
      const tree = p.defer("the restored process tree", () => killTree(restored.pid, 1_000, restored.nsInit));
      return { pid: restored.pid, nsInit: restored.nsInit, shmFiles: shm.placed, held: [shmHeld, tree] };
    } finally {
      await linkRemaps.remove();
      await ns?.done();
    }
  }, [...shmFiles, ...remapFiles]);
  if (!ns) return restored;
  const published = await ns.publish(restored.nsInit, p.events);
  return { ...restored, ...published, held: [...restored.held, forwarder!] };
}

/** How many times a namespaced restore runs CRIU while it keeps racing other replicas on a unix socket's path. */
const RACED_ATTEMPTS = 5;

function runCriu(
  p: Pipeline,
  { snap, claim, supervisor }: Claimed,
  { criu, memory, prefetch }: Here,
  settings: CriuRestoreSettings,
  {
    leaveStopped,
    ...how
  }: {
    leaveStopped?: boolean;
    command?: (criuArgv: string[]) => string[];
    execCmd?: string[];
  },
): Promise<CriuRestored> {
  const m = snap.manifest;
  const logs = {
    capturedStdout: m.server.stdoutPath,
    capturedStderr: m.server.stderrPath,
    stdout: claim.stdout,
    stderr: claim.stderr,
  };
  return p.step(
    "criu-restore",
    () =>
      criuRestore(criu, join(snap.dir, "images"), claim.dir, logs, settings, {
        signal: p.signal,
        memory,
        started: (pgid) => supervisor.group(pgid),
        leaveStopped,
        ...how,
      }),
    (r) =>
      r.prefill
        ? { bytes: r.prefill.bytes, detail: { memory, prefetch, prefill: r.prefill } }
        : { detail: { memory, prefetch } },
  );
}

/** Whether CRIU failed to bind a listener whose port has connections in TIME_WAIT (address.ts). */
async function addressInTimeWait(err: unknown, listeners: string[]): Promise<boolean> {
  const blocked =
    err instanceof StasisError &&
    err.code === "E_CRIU_RESTORE" &&
    /Can't bind inet socket.*Address already in use/.test(err.message);
  return blocked && (await timeWaitOn(listeners)) > 0;
}
