/**
 * Parked instances: the half of a restore that needs no GPU, done ahead of demand. `park()` restores a snapshot's
 * tree with CRIU and leaves it stopped (SIGSTOP, CRIU's --leave-stopped): it holds host memory and its listening
 * sockets, and nothing on the GPU (a GPU snapshot's CUDA state stays checkpointed). `take()` (take.ts) does the rest
 * when the snapshot is asked for. `stasis serve` keeps them (serve/parked.ts); docs/parking.md.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { recordInstance, type Instance } from "../instances/instances.js";
import type { Supervisor } from "../instances/supervisor.js";
import type { EngineState } from "../engines/engine.js";
import type { GpuCapture } from "../capture/gpu.js";
import { allInOrder, runPipeline } from "../pipeline/pipeline.js";
import { claimSnapshot, openForRestore } from "./claimed.js";
import { startCudaWorker } from "./cuda-worker.js";
import { lookAround } from "./preflight.js";
import { checkHere } from "../fingerprint/check.js";
import { startBackground } from "./background.js";
import { restoreTree } from "./tree.js";
import type { PrefetchMode, VerifyMode } from "./background-reads.js";
import type { MemoryMode } from "./modes.js";
import type { RestoreDeps } from "./restore.js";
import type { Config } from "../config/config.js";

export interface ParkOptions {
  name: string;
  verify: VerifyMode;
  prefetch: PrefetchMode;
  memory?: MemoryMode;
  force?: boolean;
  signal?: AbortSignal;
  /** The STASIS_* settings (config/knobs.ts): the daemon's that parks it. */
  config: Config;
}

/** A stopped tree held for a later take: its record (state "parked") and the supervisor that ends it should the
 *  daemon holding it die. */
export interface Parked {
  record: Instance;
  snapshot: string;
  /** What the take must do besides resuming the tree: for a hibernated instance, its engine's sleep state and the
   *  GPU state checkpointed in place (hibernate.ts); for a parked restore, the snapshot's (read again at take). */
  hibernated?: { engineState: EngineState; engineDir: string; gpu?: GpuCapture };
  supervisor: Supervisor;
  /** How long parking took, ms (CRIU, reads, checks): what a take saves. */
  parkMs: number;
}

/** sha256 of the snapshot's manifest as stored: a snapshot captured again under the same name differs. */
export async function manifestDigest(snapshotDir: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(join(snapshotDir, "manifest.json")))
    .digest("hex");
}

/**
 * Restores snapshot `opts.name` up to, not including, what needs the GPU, as the restore's own steps (restore.ts):
 * open ‖ preflight -> fingerprint -> (verify ‖ prefetch ‖ working set ‖ criu-restore, the tree left stopped). The
 * verify must pass before the tree counts as parked. A failure unwinds the steps: no process, no record is left.
 */
export async function park(
  opts: ParkOptions,
  events: Events,
  deps: Pick<RestoreDeps, "cudaDriver"> = {},
): Promise<Parked> {
  const started = events.t();
  return runPipeline(events, { signal: opts.signal }, async (p) => {
    // open ‖ preflight, as in a restore.
    const opened = openForRestore(p, opts.name);
    const [claimed, here] = await allInOrder(
      p.step("open", async () => claimSnapshot(p, opts.name, await opened)),
      opened.then((snap) => p.step("preflight", () => lookAround(snap, opts))),
    );
    const { snap, claim } = claimed;
    const m = snap.manifest;
    const digest = await manifestDigest(snap.dir);
    // The fingerprint may need the CUDA driver's word on the GPUs (checkHere); given back as the park ends.
    const cuda = startCudaWorker(p, m, deps.cudaDriver);
    await checkHere(
      m,
      { force: opts.force ?? false, criuVersion: here.criu.version, procGpu: here.procGpu, driver: cuda?.driver },
      events,
    );
    // No weights staged: they would hold GPU memory while parked (take.ts stages them).
    const bg = await startBackground(p, claimed, here, { verify: opts.verify, weights: "refill", config: opts.config });
    try {
      const tree = await restoreTree(p, claimed, here, opts.config, { leaveStopped: true });
      // A parked tree is served later without another look at the files: the verify must be over and good now.
      await bg.reads.done();
      await bg.workingSet;
      const { state: _restoring, criuFiles: _gone, ...rest } = claim;
      const record = await recordInstance({
        ...rest,
        pid: tree.pid,
        nsInit: tree.nsInit,
        state: "parked",
        parked: { manifestDigest: digest, parkedAt: new Date().toISOString() },
        ...(tree.shmFiles.length > 0 ? { placedFiles: tree.shmFiles } : {}),
      });
      // Handed to the caller: the record, the stopped tree and its files, and the supervisor that ends them should
      // the daemon holding them die.
      claimed.record.keep();
      for (const held of tree.held) held.keep();
      claimed.supervised.keep();
      return { record, snapshot: opts.name, supervisor: claimed.supervisor, parkMs: events.t() - started };
    } catch (err) {
      throw asStasisError((await bg.reads.failure()) ?? err);
    }
  });
}
