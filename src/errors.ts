/**
 * The one error type of stasis. Every failure a user can meet carries a stable `code`, a one-line
 * message, a `hint` saying what to do about it, and the underlying `cause` where there is one.
 * The CLI prints code, message and hint and exits with `exitStatus(code)`; the daemon maps the code to an
 * HTTP status with `httpStatus(code)`.
 *
 * @example
 *   throw new StasisError("E_SNAPSHOT_NOT_FOUND", `no snapshot named "${name}"`, {
 *     hint: "list snapshots with `stasis ls`",
 *   });
 */
export class StasisError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Structured facts for `--json` output and logs (paths, pids, sizes); never needed to read the message. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "StasisError";
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      details: this.details,
      cause: this.cause instanceof Error ? this.cause.message : this.cause,
    };
  }
}

/** code -> [exit status, HTTP status]. Exit statuses are grouped: 2 usage, 3 not found, 4 bad data, 5 environment,
 *  6 runtime. */
const CODES = {
  E_USAGE: [2, 400],
  E_INVALID_NAME: [2, 400],
  E_SNAPSHOT_NOT_FOUND: [3, 404],
  E_INSTANCE_NOT_FOUND: [3, 404],
  E_FILE_NOT_FOUND: [3, 404],
  E_SNAPSHOT_EXISTS: [4, 409],
  E_SNAPSHOT_BUSY: [4, 409],
  E_MANIFEST_INVALID: [4, 422],
  E_DIGEST_MISMATCH: [4, 422],
  E_FINGERPRINT_MISMATCH: [4, 409],
  E_FILE_CHANGED: [4, 409],
  E_SNAPSHOT_CHANGED: [4, 409],
  E_PATH_OUTSIDE_SNAPSHOT: [4, 400],
  E_ADDRESS_IN_USE: [4, 409],
  E_ADDRESS_MISSING: [5, 409],
  E_WEIGHTS_INVALID: [4, 422],
  E_PERMISSION: [5, 403],
  E_CRIU_MISSING: [5, 500],
  E_CRIU_TOO_OLD: [5, 500],
  E_CRIU_FEATURE: [5, 500],
  E_TOOL_MISSING: [5, 500],
  E_NO_SPACE: [5, 507],
  E_STORE_UNUSABLE: [5, 500],
  E_IO_URING: [5, 409],
  E_GPU_MEMORY: [5, 507],
  E_GPU_UNAVAILABLE: [5, 500],
  E_CRIU_DUMP: [6, 500],
  E_CRIU_RESTORE: [6, 500],
  E_CUDA: [6, 500],
  E_CUDA_TIMEOUT: [6, 504],
  E_READY_TIMEOUT: [6, 504],
  E_SERVER_EXITED: [6, 502],
  E_CANARY_MISMATCH: [6, 502],
  E_CANARY_UNSTABLE: [6, 502],
  E_WRONG_SERVER: [6, 502],
  E_ENGINE: [6, 502],
  E_IO: [6, 500],
  E_INTERRUPTED: [6, 500],
  E_INTERNAL: [1, 500],
  E_NOT_A_FILE: [2, 400],
  E_DAEMON: [6, 500],
  E_TOO_LARGE: [2, 413],
  E_REMOTE: [6, 502],
  E_REMOTE_AUTH: [5, 403],
  E_REMOTE_NOT_FOUND: [3, 404],
  E_UNAUTHORIZED: [5, 401],
} as const satisfies Record<string, readonly [number, number]>;

export type ErrorCode = keyof typeof CODES;

export function exitStatus(code: ErrorCode): number {
  return CODES[code][0];
}

export function httpStatus(code: ErrorCode): number {
  return CODES[code][1];
}

/** A StasisError back from its toJSON() (the daemon's answers); anything else becomes E_INTERNAL. */
export function stasisErrorFromJSON(j: Record<string, unknown>): StasisError {
  const code = typeof j.code === "string" && j.code in CODES ? (j.code as ErrorCode) : "E_INTERNAL";
  return new StasisError(code, typeof j.message === "string" ? j.message : "unknown error", {
    hint: typeof j.hint === "string" ? j.hint : undefined,
    details: j.details && typeof j.details === "object" ? (j.details as Record<string, unknown>) : undefined,
    cause: j.cause,
  });
}

/** Wraps anything thrown into a StasisError, keeping a StasisError as it is. */
export function asStasisError(err: unknown): StasisError {
  if (err instanceof StasisError) return err;
  if (err instanceof Error && err.name === "AbortError") {
    return new StasisError("E_INTERRUPTED", "interrupted", {
      cause: err,
      hint: "nothing half-done was kept; run it again",
    });
  }
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ENOSPC" || errno === "EDQUOT") {
    // A full disk anywhere (a copy, a write, a rename) is the user's to fix, never a bug.
    const path = (err as NodeJS.ErrnoException).path;
    return fsError(err, path ?? "the store", (err as NodeJS.ErrnoException).syscall ?? "write");
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StasisError("E_INTERNAL", message, {
    cause: err,
    hint: "this is a bug in stasis; please report it with the output of `stasis doctor`",
  });
}

/** Turns an errno-style Node error (ENOENT, EACCES, ENOSPC...) on `path` into a StasisError. */
export function fsError(err: unknown, path: string, doing: string): StasisError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return new StasisError("E_FILE_NOT_FOUND", `${doing}: ${path} does not exist`, { cause: err });
  if (code === "EACCES" || code === "EPERM")
    return new StasisError("E_PERMISSION", `${doing}: permission denied on ${path}`, {
      cause: err,
      hint: "stasis runs as root (CRIU needs it); check the file's owner and mode",
    });
  if (code === "ENOSPC" || code === "EDQUOT") {
    const what = code === "EDQUOT" ? "disk quota exceeded" : "no space left";
    return new StasisError("E_NO_SPACE", `${doing}: ${what} on the device of ${path}`, {
      cause: err,
      hint: "free space or point STASIS_HOME at a larger disk (a snapshot takes the server's memory and its weights)",
      details: { path },
    });
  }
  return new StasisError("E_IO", `${doing}: ${path}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
