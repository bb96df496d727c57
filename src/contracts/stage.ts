/**
 * The weights stager's protocol (python/stasis_engine/weights/stage.py; src/engines/weights-stager.ts runs it):
 * the lines a restore or the daemon writes on its stdin, and the lines it answers on its stdout.
 */
import { z } from "zod/v4";
import { EngineError } from "./engine-error.js";

const count = z.number().int().nonnegative();

/** A tensor at an offset of the engine's one weights arena (the reference engine). */
export const StageTensor = z.object({
  name: z.string(),
  offset: count,
  nbytes: count,
  dtype: z.string().optional(),
  shape: z.array(z.number().int()).optional(),
});

/** One allocation of the engine's weights, by address and size (vLLM's weights pool). */
export const StageExtent = z.object({ address: count, size: z.number().int().positive() });

/** What every job says about what to stage and where, in one of the two layouts. */
const source = { id: z.string().optional(), file: z.string().min(1), gpu: z.string().min(1) };
const arena = { arena_size: z.number().int().positive(), tensors: z.array(StageTensor) };
const extents = { extents: z.array(StageExtent).min(1) };
const restoreJob = {
  /** Where the stager listens for the engine. */
  socket: z.string().min(1),
  /** GPU memory to leave free for the CUDA restore beside it. */
  reserve_bytes: count.optional(),
  /** Hold the reads of a cold file until a go line (or stdin's end, or `wait_s`). */
  hold: z.boolean().optional(),
  wait_s: z.number().nonnegative().optional(),
};

/** A restore's job: the one-shot stager's first line, or a line to a keeper (`--keep`). */
export const StageJob = z.union([
  z.object({ ...source, ...restoreJob, ...arena }),
  z.object({ ...source, ...restoreJob, ...extents }),
]);
export type StageJob = z.infer<typeof StageJob>;

/** Every other line on a stager's stdin: go (stop holding), pin a file's image ahead, release the pinned images. */
export const StageControl = z.union([
  z.object({ op: z.literal("go"), id: z.string().optional() }),
  z.object({ op: z.literal("release"), id: z.string() }),
  z.object({ op: z.literal("pin"), ...source, id: z.string(), ...arena }),
  z.object({ op: z.literal("pin"), ...source, id: z.string(), ...extents }),
]);
export type StageControl = z.infer<typeof StageControl>;

const jobId = z.string().nullish();

/** A line on a stager's stdout (a keeper's carry the id of the job or op they answer). */
export const StagerLine = z.discriminatedUnion("event", [
  /** The memory is filled and the socket listens. */
  z.object({
    event: z.literal("ready"),
    id: jobId,
    bytes: count,
    seconds: z.number(),
    load: z.record(z.string(), z.unknown()).optional(),
  }),
  /** The engine took the memory. */
  z.object({ event: z.literal("handed-off"), id: jobId, seconds: z.number() }),
  z.object({ event: z.literal("error"), id: jobId, error: EngineError }),
  /** A keeper's, after a job's hand-off or as the answer to a pin: the file's image is pinned for the next job.
   *  `held` (here, on pin-failed and on released): the bytes of every image the keeper holds pinned now. */
  z.object({
    event: z.literal("pinned"),
    id: jobId,
    bytes: count,
    seconds: z.number(),
    already: z.boolean().optional(),
    held: count.optional(),
  }),
  z.object({ event: z.literal("pin-failed"), id: jobId, message: z.string(), held: count.optional() }),
  /** A keeper's answer to a release: its pinned images are freed (it keeps running, with its CUDA contexts). */
  z.object({ event: z.literal("released"), id: jobId, images: count, held: count.optional() }),
]);
export type StagerLine = z.infer<typeof StagerLine>;
