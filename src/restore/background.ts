import type { Config } from "../config/config.js";
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
export async function startBackground(
  p: Pipeline,
  { snap, claim }: Claimed,
  here: Here,
  opts: { verify: VerifyMode; weights?: WeightsMode; gpu?: string; config: Pick<Config, "workingSet"> },
  stager: StageLauncher = stageWeights,
): Promise<Background> {
  const m = snap.manifest;
  const { events } = p;
  const gpuForStage = (opts.weights ?? DEFAULT_WEIGHTS) === "auto" ? stagingGpu(m, here.procGpu, opts.gpu) : undefined;
  const source = gpuForStage ? (await engineFor(m.engine.kind)).stageSource?.(m.engine.state, snap.dir) : undefined;
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
  // The working set: on unless STASIS_WORKING_SET=0. Why: docs/decisions/0004-working-set.md.
  const workingSet = opts.config.workingSet && cold ? startWorkingSet(snap.dir, events, abort.signal) : undefined;
  if (workingSet) {
    p.defer("the working set's reads", () => {
      abort.abort();
      return workingSet;
    });
  }
  // Why: docs/decisions/0002-stage-hold.md (a held stager's go once CRIU's images are read, or CRIU is done).
  if (staged) void Promise.allSettled([reads.done()]).then(() => staged.go());
  return { staged, reads, workingSet };
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
