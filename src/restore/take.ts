/**
 * The other half of a restore, for a parked instance (park.ts, hibernate.ts): (staged weights ‖ cuda-worker ‖ resume
 * the stopped tree) -> CUDA restore where it has GPU state -> engine wake -> ready -> canary. What park() did (CRIU,
 * the verify) is not done again, so a take is a restore without its CRIU time. In a swap (swap.ts), what needs the
 * GPU's memory (the staged weights, the wake, the CUDA restore where the GPU has no room yet) waits for the other
 * server's sleep: `TakeOptions.gpuFree`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { recordTimeline, type Events } from "../events.js";
import { engineFor } from "../engines/engines.js";
import type { EngineState } from "../engines/engine.js";
import { launchedWhen, stageWeights, type StagedWeights } from "../engines/weights-stager.js";
import { gpuIdentityFromProc } from "../cuda/gpus.js";
import { recordInstance, stopInstance, type Instance } from "../instances/instances.js";
import { runPipeline, type Pipeline } from "../pipeline/pipeline.js";
import { continueTree } from "../proc/freeze.js";
import { isRunning } from "../proc/tree.js";
import { openSnapshot, type Snapshot } from "../store/store.js";
import { manifestDigest, type Parked } from "./park.js";
import { stagingGpu } from "./background.js";
import { startCudaWorker } from "./cuda-worker.js";
import { gpuWait, planOrWait, restoreCuda } from "./cuda-restore.js";
import { MARGIN_BYTES } from "./gpu.js";
import type { GpuCapture } from "../capture/gpu.js";
import { wakeEngine } from "./wake.js";
import type { RestoreDeps, RestoreResult } from "./restore.js";

export interface TakeOptions {
  readyTimeoutMs: number;
  /** Restore the GPU state onto this GPU (index or UUID) instead of the one captured (a parked restore only). */
  gpu?: string;
  signal?: AbortSignal;
  /**
   * A swap's (swap.ts): resolves once the server going off has freed the GPU's memory (its engine asleep), rejects
   * if it never will. Until then only what fits beside that server is done: the resume, and the CUDA restore where
   * the GPU has room for it already; the weights are staged and the engine woken once it resolves.
   */
  gpuFree?: Promise<void>;
}

/** A restore's result, and which parked instance served it. */
export type TakeResult = RestoreResult & { taken: { id: string; hibernated: boolean; parkMs: number } };

/**
 * The snapshot `p` was parked from, where `p` may still be served: its record is there and parked, its tree alive,
 * and its snapshot the one it was parked from (not removed, not captured again since). Otherwise E_SNAPSHOT_CHANGED
 * saying why, and the caller discards it.
 */
export async function servable(p: Parked): Promise<Snapshot> {
  const stale = (why: string) =>
    new StasisError("E_SNAPSHOT_CHANGED", `parked instance ${p.record.id} is not served: ${why}`, {
      hint: "it is discarded; the snapshot is restored the ordinary way",
    });
  const now = await readRecord(p.record.dir);
  if (now?.state !== "parked" || now.pid !== p.record.pid || !(await isRunning(p.record.pid))) {
    throw stale(`it is no longer parked (${now ? (now.state ?? "serving") : "its record is gone"})`);
  }
  let snap: Snapshot;
  try {
    snap = await openSnapshot(p.snapshot);
  } catch (err) {
    throw stale(`snapshot "${p.snapshot}" cannot be opened: ${(err as Error).message}`);
  }
  if ((await manifestDigest(snap.dir)) !== p.record.parked?.manifestDigest) {
    throw stale(`snapshot "${p.snapshot}" has changed since it was parked`);
  }
  return snap;
}

async function readRecord(dir: string): Promise<Instance | undefined> {
  const text = await readFile(join(dir, "instance.json"), "utf8").catch(() => undefined);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as Instance);
  } catch {
    return undefined;
  }
}

/**
 * Serves parked instance `p`, as the restore's own steps from its GPU half on (restore.ts): open (servable) ->
 * (staged weights ‖ cuda-worker ‖ resume) -> cuda-init, CUDA restore -> engine wake, ready, canary, timers (wake.ts).
 * E_SNAPSHOT_CHANGED where it must not be served (it is left as it is, for the caller to end); any other failure
 * unwinds the steps, which end it: nothing of it is left running. On success its record says it serves; its
 * supervisor is released either way.
 */
export async function take(
  parked: Parked,
  opts: TakeOptions,
  events: Events,
  deps: RestoreDeps = {},
): Promise<TakeResult> {
  const timeline = recordTimeline(events);
  const started = events.t();
  return runPipeline(events, { signal: opts.signal }, async (p) => {
    p.defer("the timeline", timeline.stop);
    const snap = await p.step("open", () => servable(parked));
    const m = snap.manifest;
    const root = parked.record.pid;
    p.defer("the parked instance's supervisor", () => parked.supervisor.release());
    const instance = p.defer("the parked instance", () => endParked(parked));
    const hib = parked.hibernated;
    if (hib?.gpu) p.defer("the hibernate's CUDA worker", () => hib.gpu?.close());
    const asleep = hib ? { state: hib.engineState, dir: hib.engineDir, timers: false } : undefined;
    const room = gpuWait(p, opts.gpuFree);
    // The stager takes its GPU memory as it starts: in a swap, once the server going off has freed it.
    const stager = opts.gpuFree ? launchedWhen(opts.gpuFree, deps.stager ?? stageWeights) : deps.stager;
    const staged = stageBeside(p, snap, parked, asleep?.state ?? m.engine.state, asleep?.dir ?? snap.dir, opts, {
      ...deps,
      stager,
    });
    staged.catch(() => undefined); // awaited before the wake
    const cuda = hib ? undefined : startCudaWorker(p, m, deps.cudaDriver);
    const gpuPlan = cuda && planOrWait(p, m, opts.gpu, cuda.driver, room);
    await p.step(
      "resume",
      () => continueTree(root),
      (pids: number[]) => ({ detail: { processes: pids.length } }),
    );
    if (hib?.gpu) {
      if (room && !(await roomToResume(hib.gpu))) await room();
      await p.step("cuda-restore", () => hib.gpu!.resume(events));
    }
    if (cuda && gpuPlan) await restoreCuda(p, gpuPlan, cuda.driver, root);
    if (room) await room();
    await wakeEngine(p, { snap, claim: parked.record }, root, await staged, opts.readyTimeoutMs, asleep);
    const readyMs = events.t() - started;
    const { state: _parked, parked: _facts, owner: _daemon, ...serving } = parked.record;
    const record = await recordInstance({ ...serving, createdAt: new Date().toISOString() });
    instance.keep();
    return {
      instance: record,
      snapshot: parked.snapshot,
      readyMs,
      phases: timeline.phases,
      reads: { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 },
      taken: { id: parked.record.id, hibernated: hib !== undefined, parkMs: parked.parkMs },
    };
  });
}

/** Whether the GPUs a hibernated instance used have the memory for its GPU state now (with the usual margin). */
async function roomToResume(gpu: GpuCapture): Promise<boolean> {
  const now = await gpu.inventoryNow();
  return gpu.usedGpuUuids.every((uuid) => {
    const here = now.gpus.find((g) => g.uuid === uuid);
    const need = gpu.processes.filter((x) => x.gpuUuids.includes(uuid)).reduce((a, x) => a + x.gpuBytes, 0);
    return here !== undefined && (here.memoryMiB - here.memoryUsedMiB) * 2 ** 20 >= need + MARGIN_BYTES;
  });
}

/**
 * The weights (vLLM at sleep level 2) staged beside the resume and the CUDA restore, as in a restore (background.ts),
 * and let go at once (the page cache is warm: the park read the snapshot). Best effort: without them the wake refills
 * in place. Ended as the take ends (a no-op once handed over).
 */
async function stageBeside(
  p: Pipeline,
  snap: Snapshot,
  parked: Parked,
  state: EngineState,
  dir: string,
  opts: TakeOptions,
  deps: RestoreDeps,
): Promise<StagedWeights | undefined> {
  const m = snap.manifest;
  if (!m.gpu) return undefined;
  const gpu = stagingGpu(m, await gpuIdentityFromProc(), parked.hibernated ? undefined : opts.gpu);
  const source = gpu ? (await engineFor(m.engine.kind)).stageSource?.(state, dir) : undefined;
  if (!gpu || !source) return undefined;
  const reserveBytes = (m.gpu.totalBytes ?? 0) + MARGIN_BYTES;
  const staged = (deps.stager ?? stageWeights)({
    ...source,
    gpu,
    dir: parked.record.dir,
    reserveBytes,
    events: p.events,
  });
  p.defer("the weights stager", () => staged.stop());
  staged.go();
  return staged;
}

/**
 * Ends a parked instance: its tree (stopped: killed at once, with its namespace's init), its placed files, its record
 * and folder. Its supervisor is released by the caller, after this.
 */
export async function endParked(p: Parked): Promise<void> {
  // Under the claims lock, read again: a `stasis stop` meanwhile has done it already.
  await stopInstance({ ...p.record, running: true, status: "parked" }, 0);
}
