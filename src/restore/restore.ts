import type { Config } from "../config/config.js";
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { recordTimeline, type TimelinePhase } from "../events.js";
import { launchedWhen, stageWeights, type StageLauncher } from "../engines/weights-stager.js";
import type { Instance } from "../instances/instances.js";
import type { Snapshot } from "../store/store.js";
import { allInOrder, runPipeline, type Pipeline } from "../pipeline/pipeline.js";
import type { MemoryMode, WeightsMode } from "./modes.js";
import type { BackgroundReads, PrefetchMode, VerifyMode } from "./background-reads.js";
import { claimSnapshot, openForRestore, type Claimed } from "./claimed.js";
import { startCudaWorker, type CudaLease, type CudaWorker } from "./cuda-worker.js";
import { lookAround } from "./preflight.js";
import { checkHere, isMismatch } from "../fingerprint/check.js";
import { startBackground } from "./background.js";
import { restoreTree } from "./tree.js";
import { gpuWait, planOrWait, restoreCuda } from "./cuda-restore.js";
import { wakeEngine } from "./wake.js";
import { handOver } from "./serving.js";
import { resolvePlacement } from "../netns/placement.js";

export { criuMemory, imagesInMemory } from "./preflight.js";
export { stagingGpu } from "./background.js";
export { pinJobFor } from "./pin.js";
export { ownCudaDriver, type CudaLease } from "./cuda-worker.js";

export interface RestoreOptions {
  name: string;
  /** full: every file's digest is checked (in parallel with the restore; the instance is not ready until it
   *  passes); auto: the same for files not verified earlier in this boot and unchanged since, sizes for the
   *  rest; size: sizes only; none. */
  verify: VerifyMode;
  /** What to read into the page cache ahead of and alongside CRIU: every file (all), only what CRIU reads
   *  (images: the weights are left to the stager or the engine's loader, which read a cold file with O_DIRECT),
   *  the weights, none, or auto (images when they are not in the page cache yet; see restore/modes.ts). */
  prefetch: PrefetchMode;
  /** Restore even though the fingerprint does not match (at your own risk). */
  force: boolean;
  /** Restore the GPU state onto this GPU (index or UUID) instead of the one captured. */
  gpu?: string;
  /** When the snapshot cannot be restored here (fingerprint mismatch): start the server with its captured
   *  compile caches instead ("warm"), and say so. */
  fallback?: "warm";
  readyTimeoutMs: number;
  /** How CRIU brings back anonymous memory (restore/modes.ts); default auto. */
  memory?: MemoryMode;
  /** How the weights come back (restore/modes.ts); default auto (staged beside the restore where the engine
   *  can adopt them, else refilled in place after the wake). */
  weights?: WeightsMode;
  /** Restore into a network namespace of its own (unless `netns` gives one), published at this host address
   *  ("HOST:PORT"; no port: a free one, netns/publish.ts). Each such restore has its own /dev/shm too. */
  publish?: string;
  /** Restore into this network namespace: a file (/proc/PID/ns/net, /run/netns/NAME), a pid, or net:[INODE]. */
  netns?: string;
  /** The server's exit status is recorded as it ends (restore/foreground.ts: `stasis restore --foreground`). */
  foreground?: boolean;
  signal?: AbortSignal;
  /** The STASIS_* settings (config/knobs.ts): the process's, or a daemon's with a request's laid over them. */
  config: Config;
}

export interface RestoreResult {
  instance: Instance;
  snapshot: string;
  /** Wall time from the start of the restore until the canary matched, ms. */
  readyMs: number;
  phases: TimelinePhase[];
  reads: { bytesRead: number; bytesAlreadyResident: number; bytesVerified: number };
  /** Set when --fallback warm started the server instead of restoring it. */
  fallback?: { reason: string; canaryMatched: boolean };
}

/** What a restore may be given instead of starting its own: a CUDA worker (`stasis serve` keeps one warm), a
 *  weights stager (`stasis serve --pin-weights` keeps one per engine interpreter). */
export interface RestoreDeps {
  cudaDriver?: () => Promise<CudaLease>;
  stager?: StageLauncher;
  /** A snapshot whose files are still arriving (restore/from-remote.ts): restored from its folder, CRIU once the
   *  files it reads are whole, the engine woken once every file is (each chunk was checked as it landed). */
  arriving?: ArrivingSnapshot;
  /**
   * A swap's (swap.ts): resolves once the server going off has freed the GPU's memory, rejects if it never will.
   * CRIU and the reads go ahead; the stager starts, the CUDA restore runs (where the GPU has no room yet) and the
   * engine wakes only after it.
   */
  gpuFree?: Promise<void>;
}

export interface ArrivingSnapshot {
  snap: Snapshot;
  criuFiles(): Promise<void>;
  all(): Promise<void>;
}

/**
 * Brings a snapshot back, serving. Its steps, each in its own module of src/restore/:
 * open (claimed.ts) ‖ preflight (preflight.ts), the preflight once the manifest is read -> cuda-worker, in the
 * background (cuda-worker.ts) -> fingerprint (fingerprint/check.ts; on a mismatch with --fallback warm: fallback.ts)
 * -> gpu-plan, in the background (cuda-restore.ts) ‖ verify ‖ prefetch ‖ staged weights ‖ working set (background.ts)
 * ‖ criu-restore (tree.ts) -> cuda-init, CUDA restore (cuda-restore.ts) -> engine wake, ready, canary, timers
 * (wake.ts) -> the instance recorded and handed over (serving.ts). CRIU waits for the claim, the preflight, the
 * fingerprint and its own files, nothing else: the CUDA worker and the GPU plan are needed only by the CUDA restore
 * after it, and the fingerprint asks the worker only where /proc's GPUs do not match. Why:
 * docs/decisions/0016-restore-fixed-costs.md.
 *
 * Each step that takes something (the claim and its supervisor, the CUDA worker, the stager, the restored tree and
 * its files) pushes its undo on the restore's cleanup stack (src/pipeline/): a failure or an interrupt at any step
 * unwinds it, so a failed restore leaves no process and no instance record. The claim comes first: a second restore
 * of the snapshot meanwhile is refused, naming this one (instances/claim.ts), and should this process die before the
 * restore is done, its supervisor ends what it started (instances/supervisor.ts). Once the instance serves, the
 * record says so and the restored server outlives this process.
 */
export async function restore(opts: RestoreOptions, events: Events, deps: RestoreDeps = {}): Promise<RestoreResult> {
  const timeline = recordTimeline(events);
  const started = events.t();
  const placement = await resolvePlacement(opts);
  const interrupted = () =>
    new StasisError("E_INTERRUPTED", "restore interrupted", { hint: "nothing half-done was kept; run it again" });
  return runPipeline(events, { signal: opts.signal, interrupted }, async (p) => {
    p.defer("the timeline", timeline.stop);
    // open ‖ preflight: the preflight needs only the manifest; should both fail, the claim's error is the one told.
    const opened = openForRestore(p, opts.name, deps.arriving?.snap);
    const [claimed, here] = await allInOrder(
      p.step("open", async () => claimSnapshot(p, opts.name, await opened, placement)),
      opened.then((snap) => p.step("preflight", () => lookAround(snap, opts))),
    );
    const m = claimed.snap.manifest;
    const cuda = startCudaWorker(p, m, deps.cudaDriver);
    try {
      await checkHere(
        m,
        { force: opts.force, criuVersion: here.criu.version, procGpu: here.procGpu, driver: cuda?.driver },
        events,
      );
    } catch (err) {
      if (!(opts.fallback === "warm" && isMismatch(err))) throw err;
      const warm = await fallBack(p, claimed, cuda, err, opts);
      return { ...warm, snapshot: opts.name, readyMs: events.t() - started, phases: timeline.phases };
    }
    const room = gpuWait(p, deps.gpuFree);
    const gpuPlan = cuda && planOrWait(p, m, opts.gpu, cuda.driver, room);
    const stager = deps.gpuFree ? launchedWhen(deps.gpuFree, deps.stager ?? stageWeights) : deps.stager;
    const bg = await startBackground(p, claimed, here, opts, stager);
    try {
      if (deps.arriving) await p.step("await-images", () => deps.arriving!.criuFiles());
      const tree = await restoreTree(p, claimed, here, opts.config, opts);
      bg.staged?.go();
      if (cuda && gpuPlan) await restoreCuda(p, gpuPlan, cuda.driver, tree.pid);
      if (deps.arriving) await p.step("await-files", () => deps.arriving!.all());
      if (room) await room();
      await wakeEngine(p, claimed, tree.pid, bg.staged, opts.readyTimeoutMs, undefined, tree.url);
      const reads = await bg.reads.done();
      const readyMs = events.t() - started;
      const instance = await handOver(p, claimed, tree, bg, opts.config);
      return { instance, snapshot: opts.name, readyMs, phases: timeline.phases, reads };
    } catch (err) {
      throw await explain(err, bg.reads);
    }
  });
}

/** A digest failure explains any other failure (CRIU choking on a damaged image): it is the one reported. */
async function explain(err: unknown, reads: BackgroundReads): Promise<StasisError> {
  return asStasisError((await reads.failure()) ?? err);
}

/** --fallback warm, on a fingerprint mismatch: the snapshot's command started with its compile caches instead. */
async function fallBack(
  p: Pipeline,
  claimed: Claimed,
  cuda: CudaWorker | undefined,
  err: StasisError,
  opts: RestoreOptions,
): Promise<Pick<RestoreResult, "instance" | "reads" | "fallback">> {
  await cuda?.lease.now();
  p.events.log(
    `cannot restore here (${err.message}); starting the server with the snapshot's compile caches instead (--fallback warm)`,
    "warn",
  );
  // Loaded only here: it brings the launch and the compile caches, which no restore needs otherwise.
  const { warmStart } = await import("./fallback.js");
  const warm = await warmStart(p, claimed, opts);
  claimed.record.keep();
  return {
    instance: warm.instance,
    reads: { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 },
    fallback: { reason: err.message, canaryMatched: warm.canaryMatched },
  };
}
