import { test } from "node:test";
import assert from "node:assert/strict";
import { DaemonMetrics } from "./metrics.js";
import { series } from "../testing/prometheus.js";

test("phases, totals and failures come from an operation's lines; instances and pinned bytes when scraped", async () => {
  let pinned = 0;
  const m = new DaemonMetrics({
    instances: async () => [{ status: "serving" }, { status: "serving" }, { status: "restoring" }],
    pinnedBytes: () => pinned,
  });
  const end = (phase: string, ms: number, ok = true) => ({
    event: { type: "phase-end" as const, phase, t: ms, ms, ok },
  });
  m.follow("restore", { event: { type: "phase-start", phase: "criu-restore", t: 0 } });
  m.follow("restore", end("criu-restore", 420));
  m.follow("restore", end("canary", 3));
  m.follow("restore", { result: { readyMs: 512 } });
  m.follow("restore", end("open", 1, false));
  m.follow("restore", { error: { code: "E_SNAPSHOT_NOT_FOUND", message: "no snapshot" } });
  m.follow("capture", end("launch", 2000));
  m.follow("capture", { error: { code: "E_CANARY_UNSTABLE", message: "x" } });
  m.follow("hibernate", end("cuda-checkpoint", 400));
  m.follow("hibernate", { result: { parked: { parkMs: 950 }, phases: [] } });
  pinned = 6.4e9;
  const text = await m.text();
  assert.equal(series(text, "stasis_restore_phase_seconds_count", { phase: "criu-restore" }), 1);
  assert.equal(series(text, "stasis_restore_phase_seconds_sum", { phase: "criu-restore" }), 0.42);
  assert.equal(series(text, "stasis_restore_phase_seconds_bucket", { phase: "criu-restore", le: "0.25" }), 0);
  assert.equal(series(text, "stasis_restore_phase_seconds_bucket", { phase: "criu-restore", le: "0.5" }), 1);
  assert.equal(
    series(text, "stasis_restore_phase_seconds_count", { phase: "open" }),
    undefined,
    "a failed phase is counted as a failure, not timed",
  );
  assert.equal(series(text, "stasis_restore_seconds_sum"), 0.512);
  assert.equal(series(text, "stasis_capture_phase_seconds_count", { phase: "launch" }), 1);
  assert.equal(series(text, "stasis_capture_seconds_count"), 0);
  assert.equal(series(text, "stasis_hibernate_phase_seconds_count", { phase: "cuda-checkpoint" }), 1);
  assert.equal(series(text, "stasis_hibernate_seconds_sum"), 0.95);
  assert.equal(series(text, "stasis_failures_total", { operation: "restore", code: "E_SNAPSHOT_NOT_FOUND" }), 1);
  assert.equal(series(text, "stasis_failures_total", { operation: "capture", code: "E_CANARY_UNSTABLE" }), 1);
  assert.equal(series(text, "stasis_instances", { state: "serving" }), 2);
  assert.equal(series(text, "stasis_instances", { state: "restoring" }), 1);
  assert.equal(series(text, "stasis_instances", { state: "abandoned" }), 0, "every state is there, at 0 when none");
  assert.equal(series(text, "stasis_pinned_weight_bytes"), 6.4e9);
  assert.ok(series(text, "process_resident_memory_bytes")! > 0, "and the process's own");
});
