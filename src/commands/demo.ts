import type { Config } from "../config/config.js";
import { fileURLToPath } from "node:url";
import type { Events } from "../events.js";
import { capture } from "../capture/capture.js";
import { DEFAULT_PREFETCH } from "../restore/modes.js";
import { restore } from "../restore/restore.js";
import { removeSnapshot } from "../store/store.js";
import { findInstance, stopInstance } from "../instances/instances.js";
import { httpOk } from "../engines/http-client.js";
import { StasisError } from "../errors.js";
import { freePort } from "../proc/net.js";

export const DEMO_SNAPSHOT = "stasis-demo";

export interface DemoResult {
  snapshot: string;
  coldStartMs: number;
  captureMs: number;
  restoreMs: number;
  speedup: number;
  question: string;
  answerBeforeCapture: string;
  answerAfterRestore: string;
  match: boolean;
}

/**
 * The built-in default job: captures the bundled example server (examples/slow_server.py, 5 s to start),
 * restores it, and compares its cold start with the restore and its answers before and after.
 */
export async function demo(opts: { startupSeconds: number; config: Config }, events: Events): Promise<DemoResult> {
  const server = fileURLToPath(new URL("../../examples/slow_server.py", import.meta.url));
  const port = await freePort();
  const question = "what survives a snapshot?";
  await removeSnapshot(DEMO_SNAPSHOT).catch((err: unknown) => {
    if (!(err instanceof StasisError && err.code === "E_SNAPSHOT_NOT_FOUND")) throw err;
  });
  const base = `http://127.0.0.1:${port}`;
  const canaryPath = `/answer?q=${encodeURIComponent(question)}`;
  const cap = await capture(
    {
      name: DEMO_SNAPSHOT,
      argv: ["python3", server, "--port", String(port), "--startup-seconds", String(opts.startupSeconds)],
      cwd: process.cwd(),
      env: {},
      engine: "http",
      readyUrl: `${base}/health`,
      readyTimeoutMs: 120_000,
      warmup: 3,
      canary: { method: "GET", path: canaryPath },
      leaveRunning: false,
      config: opts.config,
    },
    events,
  );
  const r = await restore(
    {
      name: DEMO_SNAPSHOT,
      verify: "auto",
      prefetch: DEFAULT_PREFETCH,
      force: false,
      readyTimeoutMs: 60_000,
      config: opts.config,
    },
    events,
  );
  try {
    const after = (await httpOk(base + canaryPath)).body;
    const before = cap.manifest.engine.canary.text ?? "";
    const coldStartMs = cap.manifest.timings.coldStartMs ?? 0;
    return {
      snapshot: DEMO_SNAPSHOT,
      coldStartMs,
      captureMs: cap.manifest.timings.totalMs ?? 0,
      restoreMs: r.readyMs,
      speedup: coldStartMs / r.readyMs,
      question,
      answerBeforeCapture: before,
      answerAfterRestore: after,
      match: before === after,
    };
  } finally {
    await stopInstance(await findInstance(r.instance.id), 5_000);
  }
}
