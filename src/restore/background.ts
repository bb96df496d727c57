import { envChoice } from "../env.js";
import { engineFor } from "../engines/engines.js";
import { stageWeights, type StagedWeights, type StageLauncher } from "../engines/weights-stager.js";
import type { GpuInventory } from "../cuda/gpus.js";
import type { Manifest } from "../store/manifest.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { startBackgroundReads, type BackgroundReads, type VerifyMode } from "./background-reads.js";
import { MARGIN_BYTES, planGpus } from "./gpu.js";
import { DEFAULT_WEIGHTS, type WeightsMode } from "./modes.js";
import { startWorkingSet } from "./working-set.js";
import type { Claimed } from "./claimed.js";
import type { Here } from "./preflight.js";

/** What runs beside CRIU: the weights staged on the GPU, the page-cache reads and digest checks, the working set. */
export interface Background {
  staged: StagedWeights | undefined;
  reads: BackgroundReads;
  /** Settles once the working set is read (never rejects); undefined where none is read. */
  workingSet: Promise<void> | undefined;
}

/**
 * Step "verify ‖ prefetch ‖ staged weights", started just ahead of CRIU and not waited for: the stager (where the
 * engine can adopt staged weights), the background reads (--verify, --prefetch) and, from a cold page cache, the
 * pages of the engine's files its last restore touched (working-set.ts). Each is ended should the restore fail; the
 * stager is ended as the restore ends either way (a no-op once it handed its memory over).
 */
export function startBackground(
  p: Pipeline,
  { snap, claim }: Claimed,
  here: Here,
  opts: { verify: VerifyMode; weights?: WeightsMode; gpu?: string },
  stager: StageLauncher = stageWeights,
): Background {
  const m = snap.manifest;
  const { events } = p;
  const gpuForStage = (opts.weights ?? DEFAULT_WEIGHTS) === "auto" ? stagingGpu(m, here.procGpu, opts.gpu) : undefined;
  const source = gpuForStage ? engineFor(m.engine.kind).stageSource?.(m.engine.state, snap.dir) : undefined;
  const staged =
    gpuForStage && source
      ? stager({
          ...source,
          gpu: gpuForStage,
          dir: claim.dir,
          reserveBytes: (m.gpu?.totalBytes ?? 0) + MARGIN_BYTES,
          events,
        })
      : undefined;
  if (staged) p.defer("the weights stager", () => staged.stop());
  const reads = startBackgroundReads(snap, { verify: opts.verify, prefetch: here.prefetch, events });
  p.defer("the background reads", () => reads.cancel()); // a no-op once they are done
  const cold = here.prefetch === "images" || here.prefetch === "all";
  const abort = new AbortController();
  const workingSet = workingSetOn() && cold ? startWorkingSet(snap.dir, events, abort.signal) : undefined;
  if (workingSet) {
    p.defer("the working set's reads", () => {
      abort.abort();
      return workingSet;
    });
  }
  // A stager reading a cold weights file holds its reads until CRIU's images are read, or CRIU is done (whichever
  // comes first): from the start they slowed CRIU more than they saved. Not also until the working set is read:
  // that ended 0.1-0.4 s after the images, and the weights, the last thing a cold restore waits for, started that
  // much later (restore-cold 6.10 s against 6.63 s, four of each alternating:
  // bench/results/2026-11-27-h100/pipeline-3b-39-go-ab/). For measuring, STASIS_STAGE_GO=working-set: once the
  // images and the working set are read; criu: only once CRIU is done.
  const goAfter = envChoice("STASIS_STAGE_GO", ["images", "working-set", "criu"] as const) ?? "images";
  if (staged && goAfter !== "criu")
    void Promise.allSettled([reads.done(), goAfter === "working-set" ? workingSet : undefined]).then(() => staged.go());
  return { staged, reads, workingSet };
}

/**
 * The working set (recorded after a restore, read by later cold restores beside the images): on unless
 * STASIS_WORKING_SET=0. On the H100 it takes CRIU's tail and the page faults after the weights (0.3-0.5 s) off a
 * cold restore, now that the stager holds its reads until it is read (docs/ARCHITECTURE.md).
 */
export function workingSetOn(): boolean {
  return process.env.STASIS_WORKING_SET !== "0";
}

/**
 * The GPU (UUID) the weights are staged on: the one the engine goes back to, by the same plan as the CUDA
 * restore's but from /proc (no driver start-up to wait for). Undefined for no GPU, several, or no plan (the
 * CUDA restore's own plan then reports why).
 */
export function stagingGpu(
  m: Manifest,
  here: GpuInventory | undefined,
  target: string | undefined,
): string | undefined {
  if (!m.gpu || !here) return undefined;
  try {
    const plan = planGpus(m.fingerprint.gpu?.used ?? [], here.gpus, target);
    return plan.length === 1 ? plan[0]!.to.uuid : undefined;
  } catch {
    return undefined;
  }
}
