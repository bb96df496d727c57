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
 *
 * A client that disconnects aborts its restore, which then unwinds as on Ctrl-C.
 */
import { z } from "zod";
import type { RestoreOptions } from "../restore/restore.js";
import type { RequestKnobs } from "../config/config.js";
import { MEMORY_MODES, PREFETCH_MODES, VERIFY_MODES, WEIGHTS_MODES } from "../restore/modes.js";

/**
 * A restore's options as they travel: RestoreOptions without the signal (the connection is the signal), and instead
 * of the whole configuration the STASIS_* knobs the client's user set (`requestKnobs`, raw text by variable name:
 * `{"STASIS_WORKING_SET": "0"}`), which the daemon lays over its own settings for this restore (`withRequest`).
 */
export type RestoreRequest = Omit<RestoreOptions, "signal" | "config"> & { config?: RequestKnobs };

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
    // Checked knob by knob where the daemon lays them over its own (config.ts `withRequest`).
    config: z.record(z.string()).optional(),
  })
  .strict() satisfies z.ZodType<RestoreRequest, z.ZodTypeDef, unknown>;

export type DaemonLine = { event: unknown } | { result: unknown } | { error: Record<string, unknown> };

/** POST /v1/weights/pin's body. */
export const PinRequestSchema = z.object({ name: z.string().min(1) }).strict();
