/**
 * What `stasis serve` and its clients say to each other over $STASIS_HOME/stasisd.sock (HTTP/1.1):
 *
 *   POST /v1/restore   body: RestoreRequest
 *   -> 200, NDJSON lines: {"event": StasisEvent} ... then one {"result": RestoreResult} or {"error": StasisError}
 *   GET  /v1/health    -> {"ok": true, "pid": ..., "version": ...}
 *   POST /v1/weights/release -> {"released": N}: the weights keepers of `--pin-weights` free their pinned
 *                      weights and stay up holding none (no copy of a snapshot left in memory, for `stasis
 *                      bench`'s restore-cold); N keepers held some
 *   POST /v1/weights/pin  body: {"name": SNAPSHOT} -> {"pinned": {"bytes", "seconds", "already"}}: the daemon's
 *                      keeper pins the snapshot's weights now, so that its first restore finds them pinned
 *                      (`stasis prefetch --snapshot`); 400 E_USAGE from a daemon without --pin-weights
 *   POST /v1/park      body: ParkRequest -> {"parked": [ParkedView]}: keep `count` instances of the snapshot parked
 *                      (restored, stopped before the GPU) and answer once they are (docs/parking.md)
 *   POST /v1/hibernate body: {"id": INSTANCE} -> {"parked": ParkedView}: a serving instance off the GPU, parked
 *   POST /v1/parked/stop body: {"id": INSTANCE} -> {"stopped": boolean}: end a parked instance the daemon holds
 *                      (false: it holds none of that id), one fewer of its snapshot kept parked
 *
 * A restore of a snapshot with a parked instance takes it (its result has `taken`), then a replacement is parked.
 * A client that disconnects aborts its restore, which then unwinds as on Ctrl-C.
 */
import { z } from "zod";
import type { RestoreOptions } from "../restore/restore.js";
import { MEMORY_MODES, PREFETCH_MODES, VERIFY_MODES, WEIGHTS_MODES } from "../restore/modes.js";

/** A restore's options as they travel: RestoreOptions without the signal (the connection is the signal). */
export type RestoreRequest = Omit<RestoreOptions, "signal">;

/** What the daemon accepts as a RestoreRequest; parsed once, where the body arrives. */
export const RestoreRequestSchema = z
  .object({
    name: z.string().min(1),
    verify: z.enum(VERIFY_MODES),
    prefetch: z.enum(PREFETCH_MODES),
    force: z.boolean().default(false),
    gpu: z.string().min(1).optional(),
    fallback: z.literal("warm").optional(),
    readyTimeoutMs: z.number().int().positive(),
    memory: z.enum(MEMORY_MODES).optional(),
    weights: z.enum(WEIGHTS_MODES).optional(),
  })
  .strict() satisfies z.ZodType<RestoreRequest, z.ZodTypeDef, unknown>;

export type DaemonLine = { event: unknown } | { result: unknown } | { error: Record<string, unknown> };

/** POST /v1/weights/pin's body. */
export const PinRequestSchema = z.object({ name: z.string().min(1) }).strict();

/** POST /v1/park's body. */
export const ParkRequestSchema = z
  .object({ name: z.string().min(1), count: z.number().int().min(0).default(1) })
  .strict();
export type ParkRequest = z.infer<typeof ParkRequestSchema>;

/** POST /v1/hibernate's and /v1/parked/stop's body. */
export const InstanceRequestSchema = z.object({ id: z.string().min(1) }).strict();

/** A parked instance as the daemon describes it. */
export interface ParkedView {
  id: string;
  snapshot: string;
  pid: number;
  url: string;
  hibernated: boolean;
  /** How long parking it took (CRIU, reads, checks; for a hibernated one: sleep, checkpoint, stop), ms. */
  parkMs: number;
  parkedAt: string;
}
