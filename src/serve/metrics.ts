/**
 * The daemon's Prometheus metrics (GET /metrics). Durations come from the operations' own event streams, the same
 * lines a client reads (phase-end events, then the result or the error): nothing here times anything. Instances and
 * pinned bytes are read when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DaemonLine } from "./protocol.js";
import type { InstanceStatus } from "../instances/instances.js";

export type Operation = "restore" | "capture" | "hibernate" | "swap";

/** Seconds: a phase of a few ms (fingerprint) to a capture's model load of minutes. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const STATES: InstanceStatus["status"][] = ["serving", "capturing", "restoring", "abandoned", "exited"];

export interface MetricsSources {
  instances: () => Promise<Pick<InstanceStatus, "status">[]>;
  /** Bytes of weights the keepers hold pinned now (0 without --pin-weights). */
  pinnedBytes: () => number;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly phases: Record<Operation, Histogram<"phase">>;
  private readonly totals: Record<Operation, Histogram>;
  private readonly failures: Counter<"operation" | "code">;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    const histogram = (name: string, help: string, labelNames: "phase"[] = []) =>
      new Histogram({ name, help, labelNames, buckets: BUCKETS, registers });
    this.phases = {
      restore: histogram("stasis_restore_phase_seconds", "Restore phases that finished, by phase", ["phase"]),
      capture: histogram("stasis_capture_phase_seconds", "Capture phases that finished, by phase", ["phase"]),
      hibernate: histogram("stasis_hibernate_phase_seconds", "Hibernate phases that finished, by phase", ["phase"]),
      swap: histogram("stasis_swap_phase_seconds", "Phases of swaps' restores that finished, by phase", ["phase"]),
    };
    this.totals = {
      restore: histogram("stasis_restore_seconds", "Restores that succeeded: from the request to the canary matched"),
      capture: histogram("stasis_capture_seconds", "Captures that succeeded: from the launch to the manifest"),
      hibernate: histogram("stasis_hibernate_seconds", "Hibernates that succeeded: sleep, checkpoint, tree stopped"),
      swap: histogram("stasis_swap_seconds", "Swaps that succeeded: from the request to the other's canary matched"),
    };
    this.failures = new Counter({
      name: "stasis_failures_total",
      help: "Restores, captures, hibernates and swaps that failed, by error code",
      labelNames: ["operation", "code"],
      registers,
    });
    new Gauge({
      name: "stasis_instances",
      help: "Instances stasis tracks, by state",
      labelNames: ["state"],
      registers,
      async collect() {
        const counts = new Map(STATES.map((s) => [s, 0]));
        for (const i of await sources.instances()) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "stasis_pinned_weight_bytes",
      help: "Weights held in pinned host memory by the weights keepers (--pin-weights)",
      registers,
      collect() {
        this.set(sources.pinnedBytes());
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Takes in one line of an operation's stream, as its client gets it. */
  follow(operation: Operation, line: DaemonLine): void {
    if ("event" in line) {
      const e = line.event;
      if (e.type === "phase-end" && e.ok) this.phases[operation].observe({ phase: e.phase }, e.ms / 1000);
    } else if ("result" in line) {
      const ms = totalMs(operation, line.result);
      if (ms !== undefined) this.totals[operation].observe(ms / 1000);
    } else {
      this.failures.inc({ operation, code: String(line.error.code) });
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The operation's own figure for its whole duration, from its result. */
function totalMs(operation: Operation, result: unknown): number | undefined {
  const r = result as {
    readyMs?: unknown;
    manifest?: { timings?: { totalMs?: unknown } };
    parked?: { parkMs?: unknown };
  };
  const ms = {
    restore: r.readyMs,
    capture: r.manifest?.timings?.totalMs,
    hibernate: r.parked?.parkMs,
    swap: r.readyMs,
  }[operation];
  return typeof ms === "number" ? ms : undefined;
}
