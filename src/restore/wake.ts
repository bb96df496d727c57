import { engineFor } from "../engines/engines.js";
import { checkCanary } from "../engines/canary.js";
import type { EngineContext, EngineState } from "../engines/engine.js";
import type { StagedWeights } from "../engines/weights-stager.js";
import { isRunning } from "../proc/tree.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { rearmTimers } from "./timers.js";
import type { Claimed } from "./claimed.js";

/** How the engine went to sleep: the snapshot's (its capture), or a hibernate's (restore/hibernate.ts: its state and
 *  folder, and no timers to re-arm, since CRIU did not restore them). */
export interface Asleep {
  state: EngineState;
  dir: string;
  timers: boolean;
}

/**
 * Steps engine wake -> "ready" -> "canary" -> "timers": the engine resumes (vLLM: adopts the staged weights, or wakes
 * and refills them; wakes its KV cache, resets its prefix cache), the server answers its ready URL, the canary answers
 * as it did at capture, and periodic timers CRIU restored disarmed are re-armed. The engine's waits end early should
 * the restored tree `root` die meanwhile.
 */
export async function wakeEngine(
  p: Pipeline,
  { snap, claim }: Pick<Claimed, "snap"> & { claim: Pick<Claimed["claim"], "stderr"> },
  root: number,
  staged: StagedWeights | undefined,
  readyTimeoutMs: number,
  asleep: Asleep = { state: snap.manifest.engine.state, dir: snap.dir, timers: true },
  /** Where the server answers from here: the captured URL, or the published one of a namespaced restore. */
  baseUrl = snap.manifest.server.url,
): Promise<void> {
  const m = snap.manifest;
  const engine = await engineFor(m.engine.kind);
  let alive = true;
  const watch = setInterval(() => void isRunning(root).then((r) => (alive = r)), 100);
  const watching = p.defer("the watch on the restored tree", () => clearInterval(watch));
  const ctx: EngineContext = {
    baseUrl,
    events: p.events,
    signal: p.signal,
    alive: () => alive,
    logPath: claim.stderr,
  };
  await engine.resume(ctx, asleep.state, asleep.dir, staged);
  await p.step("ready", () => engine.waitReady(ctx, m.server.readyPath, readyTimeoutMs));
  const canary = m.engine.canary;
  await p.step("canary", async () =>
    checkCanary(canary, await engine.canary(ctx, { method: canary.method, path: canary.path, body: canary.body })),
  );
  // Only where the capture saw periodic timers: a restore of any other snapshot pays nothing for it.
  if (asleep.timers && m.periodicTimers.length > 0) await p.step("timers", () => rearmTimers(root, p.events));
  await watching.now();
}
