/**
 * What `stasis serve` and its clients say to each other over $STASIS_HOME/stasisd.sock (HTTP/1.1):
 *
 *   POST /v1/restore   body: RestoreRequest
 *   -> 200, NDJSON lines: {"event": StasisEvent} ... then one {"result": RestoreResult} or {"error": StasisError}
 *   GET  /v1/health    -> {"ok": true, "pid": ..., "version": ...}
 *
 * A client that disconnects aborts its restore, which then unwinds as on Ctrl-C.
 */
import type { RestoreOptions } from "../restore/restore.js";

/** A restore's options as they travel: RestoreOptions without the signal (the connection is the signal). */
export type RestoreRequest = Omit<RestoreOptions, "signal">;

export type DaemonLine = { event: unknown } | { result: unknown } | { error: Record<string, unknown> };
