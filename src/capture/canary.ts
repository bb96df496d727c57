import { canaryRecord, checkStableCanary } from "../engines/canary.js";
import type { Engine } from "../engines/engine.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { refuseForeignListener } from "./server-guard.js";
import type { CaptureOptions } from "./capture.js";
import type { Server } from "./server.js";

/**
 * Steps "warmup" and "canary": the server is warmed up (with the canary, or the warm-up request given), then its
 * canary answer recorded, asked twice: a restore is checked against this answer, so one that changes would fail
 * every restore.
 */
export async function warmUpAndRecordCanary(
  p: Pipeline,
  engine: Engine,
  { ctx, launched }: Server,
  opts: CaptureOptions,
): Promise<ReturnType<typeof canaryRecord>> {
  const canaryReq = opts.canary ?? (await engine.defaultCanary(ctx));
  if (opts.warmup > 0) await p.step("warmup", () => engine.warmup(ctx, opts.warmupRequest ?? canaryReq, opts.warmup));
  return p.step("canary", async () => {
    await refuseForeignListener(opts.readyUrl, launched.pid, "before the canary");
    const recorded = canaryRecord(canaryReq, await engine.canary(ctx, canaryReq));
    checkStableCanary(recorded, await engine.canary(ctx, canaryReq));
    return recorded;
  });
}
