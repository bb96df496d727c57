/**
 * The undo side of a pipeline: as each resource is taken (a claim, a supervisor, a staging folder, a restored process
 * tree...) the step that took it pushes how to give it back. A pipeline that fails or is interrupted unwinds the
 * stack, newest first, so "a failed run leaves nothing running" is the structure itself rather than flags tested in a
 * `finally`. Each undo is bounded in time, and an undo that fails or runs late is logged, never thrown: the error the
 * caller sees is the one that stopped the pipeline.
 *
 * @example
 *   const stack = new CleanupStack((m) => events.log(m, "warn"));
 *   const tree = stack.defer("restored tree", () => killTree(pid, 1_000));
 *   ...
 *   tree.keep(); // success: the tree is the caller's now
 *   await stack.unwind(); // gives back whatever was not kept
 */

/** One resource on the stack. */
export interface Deferred {
  /** Takes the undo off the stack without running it: the resource is handed over (to the caller, to a record). */
  keep(): void;
  /** Runs the undo now and takes it off the stack: a resource whose use ends before the pipeline does. */
  now(): Promise<void>;
}

/** How long one undo may take before the unwinding goes on without it. */
export const UNDO_TIMEOUT_MS = 15_000;

interface Entry {
  name: string;
  undo: () => Promise<unknown> | unknown;
  timeoutMs: number;
}

export class CleanupStack {
  private readonly entries: Entry[] = [];
  private closed = false;

  /** `warn` hears about each undo that failed or ran out of time. */
  constructor(
    private readonly warn: (message: string) => void,
    private readonly timeoutMs = UNDO_TIMEOUT_MS,
  ) {}

  /**
   * Pushes `undo` for the resource `name` (named in the warning should it fail). Once the stack has been unwound, a
   * resource taken late (by work that outlived its pipeline) has no one left to give it back: it is undone at once.
   */
  defer(name: string, undo: () => Promise<unknown> | unknown, opts: { timeoutMs?: number } = {}): Deferred {
    const entry: Entry = { name, undo, timeoutMs: opts.timeoutMs ?? this.timeoutMs };
    if (this.closed) void this.run(entry);
    else this.entries.push(entry);
    return {
      keep: () => void this.take(entry),
      now: async () => {
        if (this.take(entry)) await this.run(entry);
      },
    };
  }

  /** The names of the resources still held, oldest first. */
  get held(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Runs every undo still on the stack, newest first, one at a time; never throws. */
  async unwind(): Promise<void> {
    this.closed = true;
    for (let e = this.entries.pop(); e; e = this.entries.pop()) await this.run(e);
  }

  private take(entry: Entry): boolean {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    return i >= 0;
  }

  private async run(entry: Entry): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // Not unref'd: an undo that never settles must not let the process exit before the older undos ran.
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), entry.timeoutMs)));
    try {
      const outcome = await Promise.race([Promise.resolve().then(entry.undo), late]);
      if (outcome === "late")
        this.warn(`giving back ${entry.name} took over ${entry.timeoutMs} ms; going on without it`);
    } catch (err) {
      this.warn(`could not give back ${entry.name}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
