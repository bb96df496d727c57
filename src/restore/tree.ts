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
  opts: { leaveStopped?: boolean } = {},
): Promise<RestoredTree> {
  const { snap, claim } = claimed;
  const m = snap.manifest;
  return withRestoreLock(snap, async () => {
    // CRIU needs the link_remap files only while it restores; the shared-memory ones while the instance lives.
    const shm = await placeFiles(snap.dir, m.shmFiles, "shm");
    const shmHeld = p.defer("the shared-memory files", () => removePlaced(shm.placed));
    let linkRemaps = await placeFiles(snap.dir, m.linkRemaps, "link-remap");
    // The record names them before CRIU runs: a restore killed from here on leaves files its reaper removes.
    const noteFiles = () => recordInstance({ ...claim, placedFiles: [...shm.placed, ...linkRemaps.placed] });
    try {
      await noteFiles();
      let restored: CriuRestored;
      try {
        restored = await runCriu(p, claimed, here, settings, opts);
      } catch (err) {
        // A failed CRIU restore leaves nothing: after the wait, the same restore with fresh copies of the files.
        if (!(await addressInTimeWait(err, m.listeners))) throw err;
        await waitForTimeWait(m.listeners, p.events, { signal: p.signal });
        await linkRemaps.remove(); // the failed attempt may have used them
        linkRemaps = await placeFiles(snap.dir, m.linkRemaps, "link-remap");
        await noteFiles();
        restored = await runCriu(p, claimed, here, settings, opts);
      }
      const tree = p.defer("the restored process tree", () => killTree(restored.pid, 1_000, restored.nsInit));
      return { pid: restored.pid, nsInit: restored.nsInit, shmFiles: shm.placed, held: [shmHeld, tree] };
    } finally {
      await linkRemaps.remove();
    }
  });
}

function runCriu(
  p: Pipeline,
  { snap, claim, supervisor }: Claimed,
  { criu, memory, prefetch }: Here,
  settings: CriuRestoreSettings,
  { leaveStopped }: { leaveStopped?: boolean },
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
        leaveStopped,
        started: (pgid) => supervisor.group(pgid),
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
