import { join } from "node:path";
import { residency } from "../pagecache/residency.js";
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { recordTimeline, type TimelinePhase } from "../events.js";
import { locateCriu } from "../criu/locate.js";
import { criuRestore, type CriuMemory } from "../criu/restore.js";
import type { Criu } from "../criu/locate.js";
import { DEFAULT_MEMORY, DEFAULT_WEIGHTS, resolvePrefetch, type MemoryMode, type WeightsMode } from "./modes.js";
import { placeFiles, removePlaced, type PlacedFile } from "../criu/kept-files.js";
import { openSnapshot, type Snapshot } from "../store/store.js";
import { engineFor } from "../engines/engines.js";
import { checkCanary } from "../engines/canary.js";
import type { EngineContext } from "../engines/engine.js";
import { dropRecord, killTree, recordInstance, type Instance } from "../instances/instances.js";
import { openClaimed, type Claimed } from "./claimed.js";
import { isRunning, processTree } from "../proc/tree.js";
import { checkFingerprint } from "./fingerprint-check.js";
import { startBackgroundReads, type BackgroundReads, type PrefetchMode, type VerifyMode } from "./background-reads.js";
import { MARGIN_BYTES, planGpus, prepareGpuRestore, type GpuRestore } from "./gpu.js";
import { stageWeights, type PinJob, type StagedWeights, type StageLauncher } from "../engines/weights-stager.js";
import type { Manifest } from "../store/manifest.js";
import type { GpuInventory } from "../cuda/gpus.js";
import { CudaDriver } from "../cuda/driver.js";
import { gpuIdentityFromProc } from "../cuda/gpus.js";
import { withRestoreLock } from "./lock.js";
import { envChoice } from "../env.js";
import { warmStart } from "./fallback.js";
import { rearmTimers } from "./timers.js";
import { timeWaitOn, waitForTimeWait } from "./address.js";
import { loadWorkingSet, recordWorkingSet, saveWorkingSet, startWorkingSet } from "./working-set.js";

export interface RestoreOptions {
  name: string;
  /** full: every file's digest is checked (in parallel with the restore; the instance is not ready until it
   *  passes); auto: the same for files not verified earlier in this boot and unchanged since, sizes for the
   *  rest; size: sizes only; none. */
  verify: VerifyMode;
  /** What to read into the page cache ahead of and alongside CRIU: every file (all), only what CRIU reads
   *  (images: the weights are left to the stager or the engine's loader, which read a cold file with O_DIRECT),
   *  the weights, none, or auto (images when they are not in the page cache yet; see restore/modes.ts). */
  prefetch: PrefetchMode;
  /** Restore even though the fingerprint does not match (at your own risk). */
  force: boolean;
  /** Restore the GPU state onto this GPU (index or UUID) instead of the one captured. */
  gpu?: string;
  /** When the snapshot cannot be restored here (fingerprint mismatch): start the server with its captured
   *  compile caches instead ("warm"), and say so. */
  fallback?: "warm";
  readyTimeoutMs: number;
  /** How CRIU brings back anonymous memory (restore/modes.ts); default auto. */
  memory?: MemoryMode;
  /** How the weights come back (restore/modes.ts); default auto (staged beside the restore where the engine
   *  can adopt them, else refilled in place after the wake). */
  weights?: WeightsMode;
  signal?: AbortSignal;
}

export interface RestoreResult {
  instance: Instance;
  snapshot: string;
  /** Wall time from the start of the restore until the canary matched, ms. */
  readyMs: number;
  phases: TimelinePhase[];
  reads: { bytesRead: number; bytesAlreadyResident: number; bytesVerified: number };
  /** Set when --fallback warm started the server instead of restoring it. */
  fallback?: { reason: string; canaryMatched: boolean };
}

/**
 * Brings a snapshot back, serving: check the fingerprint -> (prefetch + verify + staged weights in the
 * background) -> CRIU restore -> CUDA restore -> engine resume (vLLM: adopt the staged weights, or wake and
 * refill them; wake KV, reset prefix cache) -> ready -> canary must match. A failure at any step kills what was
 * restored (the stager too) and records no instance.
 *
 * Before any of it starts, the restore claims the snapshot's addresses with its instance record (state "restoring",
 * instances/claim.ts: a second restore of the snapshot meanwhile is refused, naming this one) and starts its
 * supervisor (instances/supervisor.ts): should this process die before the restore is done, the supervisor ends
 * what it started and removes its record and files. Once the instance serves, the record says so and the restored
 * server outlives this process.
 */
export async function restore(opts: RestoreOptions, events: Events, deps: RestoreDeps = {}): Promise<RestoreResult> {
  const timeline = recordTimeline(events);
  const started = events.t();
  const claimed = await events.phase("open", () => openClaimed(opts.name, events));
  let served = false;
  try {
    const r = await restoreClaimed(claimed, opts, events, deps, { timeline, started });
    served = true;
    return r;
  } finally {
    // Invariant: a restore that did not finish leaves no record (restoreClaimed ends what it started).
    if (!served) await dropRecord(claimed.claim);
    claimed.supervisor.release();
  }
}

async function restoreClaimed(
  { snap, claim, supervisor }: Claimed,
  opts: RestoreOptions,
  events: Events,
  deps: RestoreDeps,
  { timeline, started }: { timeline: ReturnType<typeof recordTimeline>; started: number },
): Promise<RestoreResult> {
  let gpu: GpuRestore | undefined;
  const m = snap.manifest;
  const id = claim.id;
  // The CUDA worker starts first; its cuInit, and NVML's look at the GPUs' free memory, run alongside CRIU.
  // Nothing on the path to CRIU waits for either: the fingerprint's GPU facts are read from /proc.
  const lease = m.gpu ? events.phase("cuda-worker", () => (deps.cudaDriver ?? ownCudaDriver)()) : undefined;
  lease?.catch(() => undefined);
  const driverStart = lease?.then((l) => l.driver);
  driverStart?.catch(() => undefined);
  let gpuPlan: Promise<GpuRestore | undefined> | undefined;
  const wanted = opts.memory ?? DEFAULT_MEMORY;
  const [criu, procGpu, imagesResident] = await events.phase("preflight", () =>
    Promise.all([
      locateCriu(),
      m.gpu ? gpuIdentityFromProc() : Promise.resolve(undefined),
      wanted === "auto" || opts.prefetch === "auto" ? imagesInMemory(snap) : Promise.resolve(false),
    ]),
  );
  const prefetch = resolvePrefetch(opts.prefetch, imagesResident);
  // Images being read into the page cache beside CRIU count as in memory: the parallel copy then reads them there.
  const memory = criuMemory(wanted, criu, imagesResident || prefetch === "images" || prefetch === "all");
  try {
    try {
      await checkFingerprint(m, { force: opts.force, criuVersion: criu.version, gpu: procGpu }, events);
    } catch (err) {
      // /proc and NVML might name things differently: the driver's own inventory has the last word.
      if (!(m.gpu && driverStart && err instanceof StasisError && err.code === "E_FINGERPRINT_MISMATCH")) throw err;
      await checkFingerprint(m, { force: opts.force, criuVersion: criu.version, gpu: await (await driverStart).inventory() }, events);
    }
    if (driverStart) {
      gpuPlan = events.phase("gpu-plan", async () => {
        const driver = await driverStart;
        return prepareGpuRestore(m, opts.gpu, driver, await driver.inventory());
      });
      gpuPlan.catch(() => undefined);
    }
  } catch (err) {
    void lease?.then((l) => l.release());
    if (!(opts.fallback === "warm" && err instanceof StasisError && err.code === "E_FINGERPRINT_MISMATCH")) throw err;
    events.log(`cannot restore here (${err.message}); starting the server with the snapshot's compile caches instead (--fallback warm)`, "warn");
    const warm = await warmStart(snap, claim, opts, events, (pgid) => supervisor.group(pgid));
    timeline.stop();
    return {
      instance: warm.instance,
      snapshot: opts.name,
      readyMs: events.t() - started,
      phases: timeline.phases,
      reads: { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 },
      fallback: { reason: err.message, canaryMatched: warm.canaryMatched },
    };
  }
  const inst = claim;
  const engine = engineFor(m.engine.kind);
  let alive = true;
  const ctx: EngineContext = {
    baseUrl: m.server.url,
    events,
    signal: opts.signal,
    alive: () => alive,
    logPath: inst.stderr,
  };
  let reads: BackgroundReads | undefined;
  let shmPlaced: PlacedFile[] = [];
  let workingSet: Promise<void> | undefined;
  const workingSetAbort = new AbortController();
  let staged: StagedWeights | undefined;
  let pid: number | undefined;
  let nsInit: number | undefined;
  let ok = false;
  try {
    const gpuForStage = (opts.weights ?? DEFAULT_WEIGHTS) === "auto" ? stagingGpu(m, procGpu, opts.gpu) : undefined;
    const source = gpuForStage ? engine.stageSource?.(m.engine.state, snap.dir) : undefined;
    if (gpuForStage && source) {
      staged = (deps.stager ?? stageWeights)({ ...source, gpu: gpuForStage, dir: inst.dir, reserveBytes: (m.gpu?.totalBytes ?? 0) + MARGIN_BYTES, events });
    }
    // From a cold page cache (unless STASIS_WORKING_SET=0): beside the images, the pages of the engine's files its
    // last restore touched (working-set.ts).
    reads = startBackgroundReads(snap, { verify: opts.verify, prefetch, events });
    workingSet = useWorkingSet() && (prefetch === "images" || prefetch === "all") ? startWorkingSet(snap.dir, events, workingSetAbort.signal) : undefined;
    // A stager reading a cold weights file holds its reads until CRIU's images are read, or CRIU is done (whichever
    // comes first): from the start they slowed CRIU more than they saved. Not also until the working set is read:
    // that ended 0.1-0.4 s after the images, and the weights, the last thing a cold restore waits for, started that
    // much later (restore-cold 6.10 s against 6.63 s, four of each alternating:
    // bench/results/2026-11-27-h100/pipeline-3b-39-go-ab/). For measuring, STASIS_STAGE_GO=working-set: once the
    // images and the working set are read; criu: only once CRIU is done.
    const goAfter = envChoice("STASIS_STAGE_GO", ["images", "working-set", "criu"] as const) ?? "images";
    if (goAfter !== "criu") void Promise.allSettled([reads.done(), goAfter === "working-set" ? workingSet : undefined]).then(() => staged?.go());
    const restored = await withRestoreLock(snap, async () => {
      // The shared-memory files stay while the instance lives (stasis stop removes them); CRIU needs the
      // link_remap files only while it restores.
      shmPlaced = (await placeFiles(snap.dir, m.shmFiles, "shm")).placed;
      let linkRemaps = await placeFiles(snap.dir, m.linkRemaps, "link-remap");
      // The record names them before CRIU runs: a restore killed from here on leaves files its reaper removes.
      const noteFiles = () => recordInstance({ ...claim, placedFiles: [...shmPlaced, ...linkRemaps.placed] });
      await noteFiles();
      const runCriu = () =>
        events.phase(
          "criu-restore",
          () =>
            criuRestore(
              criu,
              join(snap.dir, "images"),
              inst.dir,
              { capturedStdout: m.server.stdoutPath, capturedStderr: m.server.stderrPath, stdout: inst.stdout, stderr: inst.stderr },
              { signal: opts.signal, memory, started: (pgid) => supervisor.group(pgid) },
            ),
          (r) => (r.prefill ? { bytes: r.prefill.bytes, detail: { memory, prefetch, prefill: r.prefill } } : { detail: { memory, prefetch } }),
        );
      try {
        try {
          return await runCriu();
        } catch (err) {
          // A listener CRIU could not bind because a server stopped moments ago left connections in TIME_WAIT on
          // its port (address.ts): wait them out and restore once more (a failed CRIU restore leaves nothing).
          const blocked = err instanceof StasisError && err.code === "E_CRIU_RESTORE" && /Can't bind inet socket.*Address already in use/.test(err.message);
          if (!blocked || (await timeWaitOn(m.listeners)) === 0) throw err;
          await waitForTimeWait(m.listeners, events, { signal: opts.signal });
          await linkRemaps.remove(); // fresh copies: the failed attempt may have used them
          linkRemaps = await placeFiles(snap.dir, m.linkRemaps, "link-remap");
          await noteFiles();
          return await runCriu();
        }
      } finally {
        await linkRemaps.remove();
      }
    });
    staged?.go();
    pid = restored.pid;
    nsInit = restored.nsInit;
    const root = restored.pid;
    if (gpuPlan && driverStart) {
      // The free-memory check must pass before the CUDA restore (one that runs out of GPU memory can leave the
      // process stuck in the driver); it ran alongside CRIU, so only a failure costs a wait.
      gpu = await gpuPlan;
      const d = await driverStart;
      await events.phase("cuda-init", async () => ({ initMs: (await d.call("init", {})).result as number }), (r) => ({ detail: r }));
      if (gpu) await gpu.restore(root, events);
    }
    const watch = setInterval(() => void isRunning(root).then((r) => (alive = r)), 100);
    try {
      await engine.resume(ctx, m.engine.state, snap.dir, staged);
      await events.phase("ready", () => engine.waitReady(ctx, m.server.readyPath, opts.readyTimeoutMs));
      const canary = m.engine.canary;
      await events.phase("canary", async () =>
        checkCanary(canary, await engine.canary(ctx, { method: canary.method, path: canary.path, body: canary.body })),
      );
      // Only where the capture saw periodic timers: a restore of any other snapshot pays nothing for it.
      if (m.periodicTimers.length > 0) await events.phase("timers", () => rearmTimers(root, events));
    } finally {
      clearInterval(watch);
    }
    const readStats = await reads.done();
    const readyMs = events.t() - started;
    await workingSet; // advisory, not part of the time to ready (it only saves page faults)
    if (useWorkingSet() && !(await loadWorkingSet(snap.dir))) await recordTreeWorkingSet(snap.dir, root, events);
    const instance = await recordInstance({
      id,
      snapshot: opts.name,
      origin: "restore",
      pid: root,
      nsInit: restored.nsInit,
      url: m.server.url,
      createdAt: new Date().toISOString(),
      dir: inst.dir,
      stdout: inst.stdout,
      stderr: inst.stderr,
      listeners: m.listeners,
      ...(shmPlaced.length > 0 ? { placedFiles: shmPlaced } : {}),
    });
    ok = true;
    return { instance, snapshot: opts.name, readyMs, phases: timeline.phases, reads: readStats };
  } catch (err) {
    // A digest failure explains any other failure (CRIU choking on a damaged image): report it first.
    const readErr = await reads?.failure();
    throw asStasisError(readErr ?? err);
  } finally {
    timeline.stop();
    void lease?.then((l) => l.release(), () => undefined);
    staged?.stop();
    if (!ok) {
      // Invariant: a failed restore leaves no process behind and no instance recorded.
      reads?.cancel();
      workingSetAbort.abort();
      await workingSet;
      if (pid !== undefined) await killTree(pid, 1_000, nsInit);
      await removePlaced(shmPlaced);
    }
  }
}

/**
 * The working set (recorded after a restore, read by later cold restores beside the images): on unless
 * STASIS_WORKING_SET=0. On the H100 it takes CRIU's tail and the page faults after the weights (0.3-0.5 s) off a
 * cold restore, now that the stager holds its reads until it is read (docs/ARCHITECTURE.md).
 */
function useWorkingSet(): boolean {
  return process.env.STASIS_WORKING_SET !== "0";
}

/**
 * After the first restore's canary: records which pages of which files the restored tree has touched (its
 * libraries), for later restores from a cold page cache to read ahead. A failure is a warning.
 */
async function recordTreeWorkingSet(snapshotDir: string, root: number, events: Events): Promise<void> {
  try {
    await events.phase(
      "record-working-set",
      async () => {
        const ws = await recordWorkingSet((await processTree(root)).map((p) => p.pid));
        await saveWorkingSet(snapshotDir, ws);
        return ws;
      },
      (ws) => ({ bytes: ws.bytes, detail: { files: ws.files.length } }),
    );
  } catch (err) {
    events.log(`could not record the restore's working set: ${(err as Error).message}`, "warn");
  }
}

/**
 * The GPU (UUID) the weights are staged on: the one the engine goes back to, by the same plan as the CUDA
 * restore's but from /proc (no driver start-up to wait for). Undefined for no GPU, several, or no plan (the
 * CUDA restore's own plan then reports why).
 */
export function stagingGpu(m: Manifest, here: GpuInventory | undefined, target: string | undefined): string | undefined {
  if (!m.gpu || !here) return undefined;
  try {
    const plan = planGpus(m.fingerprint.gpu?.used ?? [], here.gpus, target);
    return plan.length === 1 ? plan[0]!.to.uuid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a restore of snapshot `name` would stage, on the GPU it would restore onto: what `stasis serve
 * --pin-weights` pins ahead of the first restore (POST /v1/weights/pin). E_USAGE where there is nothing to stage (an
 * engine or snapshot without staged weights), E_GPU_UNAVAILABLE where no GPU here could take the snapshot.
 */
export async function pinJobFor(name: string): Promise<PinJob> {
  const snap = await openSnapshot(name);
  const m = snap.manifest;
  const source = engineFor(m.engine.kind).stageSource?.(m.engine.state, snap.dir);
  if (!source) {
    throw new StasisError("E_USAGE", `snapshot "${name}" has no weights to pin: its engine (${m.engine.kind}) did not sleep at level 2 with a layout it can adopt`, {
      hint: "only snapshots of the vLLM adapter's engines at sleep level 2 (the reference engine's) restore from pinned weights",
    });
  }
  const gpu = stagingGpu(m, m.gpu ? await gpuIdentityFromProc() : undefined, undefined);
  if (!gpu) {
    throw new StasisError("E_GPU_UNAVAILABLE", `no GPU here to pin snapshot "${name}"'s weights for (it needs ${m.fingerprint.gpu?.used.length ?? 0} GPU(s) like the one it was captured on)`, {
      hint: "stasis inspect shows the GPU it was captured on; stasis doctor what this machine has",
    });
  }
  return { ...source, gpu };
}

/** What a restore may be given instead of starting its own: a CUDA worker (`stasis serve` keeps one warm), a
 *  weights stager (`stasis serve --pin-weights` keeps one per engine interpreter). */
export interface RestoreDeps {
  cudaDriver?: () => Promise<CudaLease>;
  stager?: StageLauncher;
}

/** A CUDA worker for one restore; `release()` when done (closes it, or hands a shared one back). */
export interface CudaLease {
  driver: CudaDriver;
  release: () => void;
}

/** A worker of the restore's own, closed when it ends. */
export async function ownCudaDriver(): Promise<CudaLease> {
  const driver = await CudaDriver.start();
  return { driver, release: () => driver.close() };
}

/**
 * The memory mode CRIU runs with. auto: parallel where this CRIU has stasis's "lazy-prefill" patch and the
 * snapshot's images are in the page cache, copy otherwise. Measured on the H100 with the 3B engine
 * (bench/results/2026-11-27-h100/pipeline-3b-7-memory-modes/): images in memory, 1.50 s to the first token with parallel vs
 * 2.52 s with copy (the copy of 2.16 GB into fresh memory by one thread is the bottleneck); page cache dropped,
 * copy 7.26 s vs parallel 7.92 s (the disk is the bottleneck, and CRIU's reads go faster in one stream).
 * parallel asked for on a CRIU without the patch is refused, not quietly downgraded.
 */
export function criuMemory(mode: MemoryMode, criu: Criu, imagesResident: boolean): CriuMemory {
  const patched = criu.features.includes("lazy-prefill");
  if (mode === "auto") return patched && imagesResident ? "parallel" : "copy";
  if (mode === "parallel" && !patched) {
    throw new StasisError("E_CRIU_FEATURE", `--memory parallel needs stasis's CRIU patch (lazy-prefill); ${criu.path} (${criu.version}) lacks it`, {
      hint: "run scripts/install-criu.sh (set-up does), which builds CRIU with stasis's patches, or use --memory copy",
    });
  }
  return mode;
}

/** Whether most (>= half) of the snapshot's CRIU images are in the page cache. */
export async function imagesInMemory(snap: Snapshot): Promise<boolean> {
  const images = snap.manifest.files.filter((f) => f.role === "image" && f.size > 0).map((f) => join(snap.dir, f.path));
  // A missing or unreadable image fails the restore later, with its own error.
  const counts = await residency(images).catch(() => []);
  const size = counts.reduce((n, r) => n + r.size, 0);
  return size > 0 && counts.reduce((n, r) => n + r.residentBytes, 0) * 2 >= size;
}
