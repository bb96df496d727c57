/**
 * Runs a pipeline (capture, restore) as a list of named steps over one cleanup stack. A step is a short function
 * returning a typed value; `step()` runs it as a phase of the event stream (the names the progress display, the
 * timeline, `--json` and the benchmarks know). A step that takes a resource pushes its undo (`defer`); when the
 * pipeline throws, the stack unwinds, newest first. When it returns, whatever it hands to the caller it has taken off
 * the stack (`keep()`), and the rest (a lease, a background job, a lock) is given back all the same.
 *
 * An interrupt (the AbortSignal) ends the step in flight through that step's own use of the signal; no further step
 * starts, and the stack unwinds.
 *
 * @example
 *   return runPipeline(events, { signal }, async (p) => {
 *     const claim = await p.step("open", () => claimSnapshot(p, name, snap));
 *     const tree = await p.step("criu-restore", () => restoreTree(p, claim));
 *     tree.handle.keep();
 *     return tree.pid;
 *   });
 */
import { StasisError } from "../errors.js";
import type { Events, PhaseResult } from "../events.js";
import { CleanupStack, type Deferred } from "./cleanup.js";

export type { Deferred } from "./cleanup.js";

export interface Pipeline {
  readonly events: Events;
  readonly signal: AbortSignal | undefined;
  /** Runs `body` as the phase `name`; refused (E_INTERRUPTED) once the signal has fired. */
  step<T>(name: string, body: () => Promise<T> | T, report?: (value: T) => PhaseResult): Promise<T>;
  /** Throws the interrupt's error once the signal has fired: a point past which a cancellation must not go. */
  throwIfInterrupted(): void;
  /** Pushes the undo of a resource just taken (cleanup.ts). */
  defer(name: string, undo: () => Promise<unknown> | unknown, opts?: { timeoutMs?: number }): Deferred;
}

export interface PipelineOptions {
  signal?: AbortSignal;
  /** The error a step refused after an interrupt throws (default: E_INTERRUPTED, "interrupted"). */
  interrupted?: () => StasisError;
  /** The bound of each undo (cleanup.ts UNDO_TIMEOUT_MS by default). */
  undoTimeoutMs?: number;
}

export async function runPipeline<T>(
  events: Events,
  opts: PipelineOptions,
  body: (p: Pipeline) => Promise<T>,
): Promise<T> {
  const stack = new CleanupStack((m) => events.log(m, "warn"), opts.undoTimeoutMs);
  const interrupted =
    opts.interrupted ??
    (() => new StasisError("E_INTERRUPTED", "interrupted", { hint: "nothing half-done was kept; run it again" }));
  const p: Pipeline = {
    events,
    signal: opts.signal,
    step: (name, run, report) => {
      if (opts.signal?.aborted) return Promise.reject(interrupted());
      return events.phase(name, run, report);
    },
    throwIfInterrupted: () => {
      if (opts.signal?.aborted) throw interrupted();
    },
    defer: (name, undo, o) => stack.defer(name, undo, o),
  };
  try {
    return await body(p);
  } finally {
    // Invariant: what the pipeline did not hand over is given back, whether it failed, was interrupted or finished.
    await stack.unwind();
  }
}

/**
 * Waits for steps started side by side and returns their values; where any failed, throws the first failure in the
 * order given, once all have settled: the error one after the other would have given, and nothing of theirs still
 * running when the stack unwinds.
 *
 * @example
 *   const [claimed, here] = await allInOrder(p.step("open", claim), p.step("preflight", lookAround));
 */
export async function allInOrder<T extends readonly unknown[]>(
  ...running: { [K in keyof T]: Promise<T[K]> }
): Promise<T> {
  const settled = await Promise.allSettled(running);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
