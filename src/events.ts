/**
 * The one event stream. Pipeline code (capture, restore, prefetch, bench) never prints: it emits typed
 * events here, and the progress display, the phase timeline, `--json` output, the daemon's log and the
 * benchmark recorder subscribe.
 *
 * @example
 *   const events = new Events();
 *   const timeline = recordTimeline(events);
 *   await events.phase("criu-restore", () => restoreTree(opts));
 *   timeline.phases; // [{ name: "criu-restore", startMs: 0.1, endMs: 412.3, ... }]
 */
export type StasisEvent =
  | { type: "phase-start"; phase: string; t: number }
  | {
      type: "phase-end";
      phase: string;
      t: number;
      ms: number;
      ok: boolean;
      bytes?: number;
      detail?: Record<string, unknown>;
    }
  | { type: "progress"; phase: string; t: number; done: number; total: number; unit: "bytes" | "items" }
  | { type: "process-exit"; t: number; pid: number; command: string; code: number | null; signal: string | null }
  | { type: "log"; t: number; level: "info" | "warn"; message: string }
  | WaitingEvent;

/**
 * A wait that shows no bytes moving (a server loading its model): emitted about once a second while it lasts,
 * with how long it has waited, what the last try got (an HTTP status or a connection error) and where the
 * server's log is, so a slow start can be told from a stuck one.
 */
export interface WaitingEvent {
  type: "waiting";
  phase: string;
  t: number;
  elapsedMs: number;
  url: string;
  last: string;
  logPath?: string;
}

type Listener = (event: StasisEvent) => void;

/** What a phase's body may report about itself when it ends. */
export interface PhaseResult {
  bytes?: number;
  detail?: Record<string, unknown>;
}

export class Events {
  private readonly listeners = new Set<Listener>();
  /** The clock all events share, in ms; injectable so tests control time. */
  readonly now: () => number;
  readonly origin: number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
    this.origin = now();
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: StasisEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Milliseconds since this stream was created: the timestamp every event carries. */
  t(): number {
    return this.now() - this.origin;
  }

  log(message: string, level: "info" | "warn" = "info"): void {
    this.emit({ type: "log", t: this.t(), level, message });
  }

  progress(phase: string, done: number, total: number, unit: "bytes" | "items" = "bytes"): void {
    this.emit({ type: "progress", phase, t: this.t(), done, total, unit });
  }

  /**
   * Runs `body` as a named phase: emits phase-start, then phase-end with its duration (ok=false if it threw).
   * A body may return `{ result, report }` through `withReport` to attach bytes moved or other detail.
   */
  async phase<T>(phase: string, body: () => Promise<T> | T, report?: (value: T) => PhaseResult): Promise<T> {
    const start = this.t();
    this.emit({ type: "phase-start", phase, t: start });
    let ok = false;
    let extra: PhaseResult = {};
    try {
      const value = await body();
      ok = true;
      if (report) extra = report(value);
      return value;
    } finally {
      const end = this.t();
      this.emit({ type: "phase-end", phase, t: end, ms: end - start, ok, ...extra });
    }
  }
}

export interface TimelinePhase {
  name: string;
  startMs: number;
  endMs: number;
  ms: number;
  ok: boolean;
  bytes?: number;
  /** bytes / seconds, for phases that move bytes. */
  gbps?: number;
  detail?: Record<string, unknown>;
}

/** Subscribes to `events` and keeps every finished phase, in the order they ended. */
export function recordTimeline(events: Events): { phases: TimelinePhase[]; stop: () => void } {
  const starts = new Map<string, number>();
  const phases: TimelinePhase[] = [];
  const stop = events.on((e) => {
    if (e.type === "phase-start") starts.set(e.phase, e.t);
    if (e.type === "phase-end") {
      const startMs = starts.get(e.phase) ?? e.t - e.ms;
      const phase: TimelinePhase = { name: e.phase, startMs, endMs: e.t, ms: e.ms, ok: e.ok };
      if (e.bytes !== undefined) {
        phase.bytes = e.bytes;
        if (e.ms > 0) phase.gbps = e.bytes / 1e9 / (e.ms / 1000);
      }
      if (e.detail) phase.detail = e.detail;
      phases.push(phase);
    }
  });
  return { phases, stop };
}
