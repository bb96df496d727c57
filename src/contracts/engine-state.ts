/**
 * What each engine adapter keeps in a snapshot's manifest (`engine.state`), by the engine's kind. The vLLM
 * adapter's comes from the engine side's weights layout (`stasis_weights_layout`); the manifest's schema checks it
 * when a snapshot is read. Fields this version does not know are kept (a snapshot from a newer stasis).
 */
import { z } from "zod/v4";
import { StageExtent, StageTensor } from "./stage.js";

/**
 * What capture records of an engine that can adopt staged weights. Two layouts: `tensors` at offsets of one
 * `arenaSize` allocation (the reference engine's arena), or `extents`: the engine's weights allocations by address
 * and size (vLLM's weights pool), which the stager makes one allocation each and the engine maps back at those
 * addresses. `arenaSize` is the bytes staged either way.
 */
export const StageInfo = z.object({
  /** The engine's interpreter, which runs the stager. */
  python: z.string().min(1),
  /** The folder holding the stasis_engine package, for PYTHONPATH. */
  path: z.string(),
  arenaSize: z.number().int().positive(),
  tensors: z.array(StageTensor).default([]),
  extents: z.array(StageExtent).optional(),
});
export type StageInfo = z.infer<typeof StageInfo>;

/** Any HTTP server: nothing of its own. */
export const HttpEngineState = z.looseObject({});

/** vLLM (and the reference engine): slept at level 2 with its weights dumped, or everything left in the image. */
export const VllmEngineState = z.discriminatedUnion("sleepLevel", [
  z.looseObject({
    sleepLevel: z.literal(2),
    /** The engine's workers, one weights file each. */
    ranks: z.number().int().positive(),
    /** The weights files, snapshot-relative, `{rank}` standing for the rank. */
    weights: z.string().optional(),
    /** The dump shared by snapshots of the same model, under $STASIS_HOME/weights. */
    reuseKey: z.string().optional(),
    stage: StageInfo.optional(),
    /** Sleep-pool tags beyond weights and KV cache that the sleep released and the wake must bring back. */
    wakeTags: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).optional(),
    /** The workers' NCCL communicators were suspended before the checkpoint: the restore resumes them first. */
    commsSuspended: z.boolean().optional(),
  }),
  z.looseObject({
    sleepLevel: z.literal(0),
    /** Why the engine could not sleep (its weights and KV cache stay in the image). */
    reason: z.string(),
  }),
]);
export type VllmEngineState = z.infer<typeof VllmEngineState>;

export const ENGINE_STATE = { http: HttpEngineState, vllm: VllmEngineState } as const;
