import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { recordTimeline } from "../events.js";
import { VERSION } from "../version.js";
import { locateCriu } from "../criu/locate.js";
import { criuDump } from "../criu/dump.js";
import { createdSince, findLinkRemaps, keepFiles, keepLinkRemaps, sharedMemoryFiles, unlinkedFiles } from "../criu/kept-files.js";
import { launch, DUMPABLE_ENV } from "../launch/launch.js";
import { processTree, readStat } from "../proc/tree.js";
import { listenersOf } from "../proc/net.js";
import { Staging } from "../store/store.js";
import { digestFiles, followAppends, type DigestInput, type KnownChunks } from "../store/digest.js";
import { recordVerified, stampFiles, type Stamp } from "../store/verified.js";
import { MANIFEST_SCHEMA, type FileEntry, type Manifest } from "../store/manifest.js";
import { canaryRecord, checkStableCanary } from "../engines/canary.js";
import { engineFor } from "../engines/engines.js";
import type { CanaryRequest, EngineContext } from "../engines/engine.js";
import { machineFingerprint } from "../fingerprint/fingerprint.js";
import { dropRecord, instanceDir, killTree, newInstanceId, recordInstance } from "../instances/instances.js";
import { selfAsOwner, type Instance } from "../instances/instances.js";
import { supervise } from "../instances/supervisor.js";
import { checkBeforeLaunch, refuseUndumpable } from "./preflight.js";
import { closeAhead, cudaWorkerAhead, gpuCheckpoint, type GpuCapture } from "./gpu.js";
import type { CudaDriver } from "../cuda/driver.js";
import { cudaCandidates } from "../cuda/tree.js";
import { captureCaches } from "./caches.js";
import { stasisHome } from "../home.js";
import { PRIVATE_DIR, restrictTree } from "../store/private.js";
import { outOfSpace } from "../store/space.js";
import { removeDeadCaptures } from "./leftovers.js";
import { refuseForeignListener } from "./server-guard.js";
import { describeTimers, periodicTimers } from "./timers.js";
import { lockTableOfLog, removeLockTableQuietly } from "../criu/network-lock.js";

export interface CaptureOptions {
  name: string;
  argv: string[];
  cwd: string;
  /** Set on top of the caller's environment (after stasis's own dumpability settings). */
  env: Record<string, string>;
  engine: "http" | "vllm";
  /** Full URL that answers 2xx once the server is ready; its origin is the server's base URL. */
  readyUrl: string;
  readyTimeoutMs: number;
  warmup: number;
  /** The canary request; engines have a default (vLLM: a greedy completion). */
  canary?: CanaryRequest;
  /** The warm-up request, when it is not the canary (e.g. one that loads state into the server). */
  warmupRequest?: CanaryRequest;
  leaveRunning: boolean;
  /** vllm: capture a GPU server that cannot sleep at level 2 anyway, its weights and KV cache in the image. */
  allowFullImage?: boolean;
  signal?: AbortSignal;
}

export interface CaptureResult {
  name: string;
  dir: string;
  manifest: Manifest;
  /** Set with --leave-running: the original server, still serving. */
  instance?: Instance;
  phases: ReturnType<typeof recordTimeline>["phases"];
}

/**
 * Starts a server, warms it up, records its canary and snapshots it:
 * launch -> ready -> warm-up -> canary -> engine prepare (vLLM: dump weights, sleep) -> CUDA checkpoint ->
 * CRIU dump -> link-remap files -> digests -> manifest. The snapshot appears only when all of it succeeded;
 * on any failure the server is stopped and the half-written snapshot removed. While it runs, the server is an
 * instance in state "capturing" (`stasis ps` lists it) under a supervisor (instances/supervisor.ts) that ends it should
 * this process die first; with --leave-running it becomes an ordinary instance once the snapshot is committed.
 */
export async function capture(opts: CaptureOptions, events: Events): Promise<CaptureResult> {
  const timeline = recordTimeline(events);
  const started = events.t();
  const engine = engineFor(opts.engine);
  const baseUrl = new URL(opts.readyUrl).origin;
  const readyPath = new URL(opts.readyUrl).pathname + new URL(opts.readyUrl).search;
  const criu = await events.phase("preflight", async () => {
    await checkBeforeLaunch(opts, { warn: (m) => events.log(m, "warn") });
    await removeDeadCaptures(events);
    return locateCriu();
  });
  const staging = await Staging.begin(opts.name);
  const id = newInstanceId();
  // The supervisor first: a capture killed from here on leaves no server. Its folder stays, as after any failed
  // capture: its logs, and the dump log that names the network-lock table a dead capture's reaper removes
  // (leftovers.ts).
  const supervisor = supervise(id, "");
  const inst = await instanceDir(id);
  let server: Awaited<ReturnType<typeof launch>> | undefined;
  let gpu: GpuCapture | undefined;
  let cudaAhead: Promise<CudaDriver | undefined> | undefined;
  let keepServer = false;
  let succeeded = false;
  const digests: Promise<unknown>[] = [];
  const dumpLog = join(inst.dir, "criu-dump.log");
  let dumpStarted = false;
  try {
    const launchedAtMs = Date.now();
    server = await events.phase("launch", () =>
      launch({
        argv: opts.argv,
        cwd: opts.cwd,
        env: opts.env,
        stdout: inst.stdout,
        stderr: inst.stderr,
        spawned: (pid) => supervisor.group(pid),
      }),
    );
    const owner = await selfAsOwner();
    const createdAt = new Date().toISOString();
    const record = { id, snapshot: opts.name, origin: "capture" as const, pid: server.pid, url: baseUrl, createdAt };
    await recordInstance({ ...record, ...inst, state: "capturing", owner });
    const launched = server;
    // Recorded before anything else can happen: a capture killed from here on leaves a server (and soon a CRIU
    // network-lock table) that the next command removes with this folder (leftovers.ts).
    const serverStart = (await readStat(launched.pid))?.startTime;
    const owned = serverStart === undefined ? {} : { server: { pid: launched.pid, startTime: serverStart } };
    await staging.noteOwner({ criuLog: dumpLog, ...owned });
    const ctx: EngineContext = {
      baseUrl,
      events,
      signal: opts.signal,
      alive: () => !launched.hasExited(),
      logPath: inst.stderr,
      allowFullImage: opts.allowFullImage,
      usesGpu: async () => (await cudaCandidates((await processTree(launched.pid)).map((p) => p.pid))).length > 0,
    };
    await events.phase("ready", async () => {
      await engine.waitReady(ctx, readyPath, opts.readyTimeoutMs);
      await refuseForeignListener(opts.readyUrl, launched.pid, "when the ready URL answered");
    });
    const coldStartMs = events.t() - started;
    cudaAhead = cudaWorkerAhead((await processTree(launched.pid)).map((p) => p.pid));
    const canaryReq = opts.canary ?? (await engine.defaultCanary(ctx));
    if (opts.warmup > 0) await events.phase("warmup", () => engine.warmup(ctx, opts.warmupRequest ?? canaryReq, opts.warmup));
    const canary = await events.phase("canary", async () => {
      await refuseForeignListener(opts.readyUrl, launched.pid, "before the canary");
      const recorded = canaryRecord(canaryReq, await engine.canary(ctx, canaryReq));
      // Asked twice: a restore is checked against this answer, so one that changes would fail every restore.
      checkStableCanary(recorded, await engine.canary(ctx, canaryReq));
      return recorded;
    });
    const identity = await engine.identify(ctx);
    const engineState = await events.phase("engine-prepare", () => engine.prepareCapture(ctx, staging.dir));
    // The server wrote the engine's files with its own umask: root's alone before they are stamped (a later chmod
    // would change their ctime and void the stamp).
    await restrictTree(staging.dir);
    throwIfAborted(opts.signal);
    // The engine's files (its weights) are complete: digested while the GPU is checkpointed and CRIU dumps.
    const engineFiles = digestBeside(staging.dir, (engineState.files ?? []).map((f) => ({ path: f.path, role: f.role })), "digest-engine-files", events);
    digests.push(engineFiles);

    const tree = await processTree(server.pid);
    const pids = tree.map((p) => p.pid);
    await refuseUndumpable(pids);
    const listeners = await listenersOf(pids);
    const timers = await periodicTimers(pids);
    if (timers.length > 0) events.log(describeTimers(timers));
    const ahead = cudaAhead;
    cudaAhead = undefined; // gpuCheckpoint owns it now
    gpu = await gpuCheckpoint(pids, events, ahead);
    const unlinked = await unlinkedFiles(pids);
    const shared = await sharedMemoryFiles(pids);
    throwIfAborted(opts.signal);

    // CRIU's pages images are digested as CRIU appends to them (it writes each front to back, never going back):
    // on the H100 that leaves 0.12-0.15 s of digest after the dump of a 5.4 GB image instead of 0.7 s.
    const follow = followAppends(staging.dir, "images", (n) => /^pages-\d+\.img$/.test(n), { concurrency: Math.min(4, Math.ceil(availableParallelism() / 4)) });
    const followed = events.phase("digest-pages", () => follow.result, (r) => ({ bytes: r.bytes }));
    followed.catch(() => undefined); // awaited after the dump, or settled in finally
    digests.push(followed);
    dumpStarted = true;
    const dump = await events
      .phase("criu-dump", () =>
        criuDump(criu, launched.pid, join(staging.dir, "images"), {
          leaveRunning: opts.leaveRunning,
          logDir: inst.dir,
          holdLinkRemaps: { dirs: [...unlinked.keys()], tag: id },
          signal: opts.signal,
        }),
      )
      .finally(() => follow.stop());
    // Left running, the tree's connections were unlocked by CRIU; otherwise the snapshot owns the lock's table.
    const networkLockTable = opts.leaveRunning ? undefined : await lockTableOfLog(dump.logPath);
    const { known } = await followed;
    const linkRemaps = await keepLinkRemaps(await findLinkRemaps(unlinked, id), staging.dir);
    // The tree is gone unless it was left running: then its shared-memory files are its own leftovers.
    const shmFiles = await keepFiles(shared, staging.dir, "shm", !opts.leaveRunning);
    // CRIU's images are complete: digested while the engine resumes (or the tree ends) and the caches are packed.
    const imageFiles = digestBeside(
      staging.dir,
      [
        ...(await filesUnder(staging.dir, "images")).map((path) => ({ path, role: "image" as const })),
        ...linkRemaps.map((r) => ({ path: r.file, role: "link-remap" as const })),
        ...shmFiles.map((r) => ({ path: r.file, role: "shm" as const })),
      ],
      "digest-images",
      events,
      opts.engine !== "vllm", // without compile caches to pack, nothing runs beside it: all cores
      known,
    );
    digests.push(imageFiles);
    if (opts.leaveRunning) {
      await gpu?.resume(events);
      await events.phase("engine-resume", () => engine.resume(ctx, engineState, staging.dir));
    } else {
      await launched.exited;
    }

    // Compile caches matter for engines that compile (vLLM); a plain HTTP server has none worth keeping.
    const caches =
      opts.engine === "vllm" ? await events.phase("caches", () => captureCaches({ ...process.env, ...DUMPABLE_ENV, ...opts.env }, staging.dir, events)) : [];
    await restrictTree(staging.dir); // tar wrote the caches with stasis's own umask
    await mkdir(join(staging.dir, "logs"), { recursive: true, mode: PRIVATE_DIR });
    await copyFile(inst.stdout, join(staging.dir, "logs", "capture-stdout.log"));
    await copyFile(inst.stderr, join(staging.dir, "logs", "capture-stderr.log"));
    await copyFile(dump.logPath, join(staging.dir, "logs", "criu-dump.log"));

    const cacheFiles = digestBeside(staging.dir, caches.map((c) => ({ path: c.file, role: "cache" as const })), "digest-caches", events, true);
    digests.push(cacheFiles);
    const parts = await Promise.all([imageFiles, cacheFiles, engineFiles]);
    const files = parts.flatMap((p) => p.files);
    const stamps = new Map(parts.flatMap((p) => [...p.stamps]));
    const fingerprint = await machineFingerprint({
      criuVersion: criu.version,
      gpu: gpu?.inventory,
      usedGpuUuids: gpu?.usedGpuUuids,
      engine: identity,
    });
    const timings: Record<string, number> = { coldStartMs };
    for (const p of timeline.phases) timings[p.name] = Math.round(p.ms);
    const manifest: Manifest = {
      schema: MANIFEST_SCHEMA,
      name: opts.name,
      createdAt: new Date().toISOString(),
      stasisVersion: VERSION,
      command: { argv: opts.argv, cwd: opts.cwd, env: { ...DUMPABLE_ENV, ...opts.env } },
      server: { url: baseUrl, readyPath, stdoutPath: inst.stdout, stderrPath: inst.stderr },
      engine: { kind: opts.engine, canary, state: withoutFiles(engineState) },
      fingerprint,
      tree: { rootPid: launched.pid, processes: tree.length, cudaProcesses: gpu?.processes.length ?? 0 },
      gpu: gpu?.manifest(),
      criu: { options: dump.options, ...(networkLockTable ? { networkLockTable } : {}) },
      caches,
      linkRemaps,
      shmFiles,
      listeners,
      periodicTimers: timers,
      files,
      timings,
    };
    manifest.timings.totalMs = Math.round(events.t() - started);
    throwIfAborted(opts.signal); // the last moment a cancellation can still keep the snapshot from being committed
    const dir = await events.phase("commit", () => staging.commit(manifest));
    await recordVerified(dir, stamps);
    let instance: Instance | undefined;
    if (opts.leaveRunning) {
      // The server's own shared-memory files (created since it started): `stop` removes them once it has ended.
      const ownShm = await createdSince(shared, launchedAtMs);
      instance = await recordInstance({
        id,
        snapshot: opts.name,
        origin: "capture",
        pid: launched.pid,
        url: baseUrl,
        createdAt: new Date().toISOString(),
        dir: inst.dir,
        stdout: inst.stdout,
        stderr: inst.stderr,
        ...(ownShm.length > 0 ? { placedFiles: ownShm } : {}),
      });
      keepServer = true;
      launched.detach();
    }
    succeeded = true;
    return { name: opts.name, dir, manifest, instance, phases: timeline.phases };
  } catch (err) {
    // A full disk is said as such, with what the snapshot had written: measured before the abort below removes it.
    const tree = server && !server.hasExited() ? (await processTree(server.pid).catch(() => [])).map((p) => p.pid) : [];
    const e = (await outOfSpace(asStasisError(err), staging.dir, stasisHome(), tree)) ?? asStasisError(err);
    // The server's output stays in its folder after a failure: say where, unless the hint already does.
    if (!server || (e.hint ?? "").includes(inst.dir)) throw e;
    throw new StasisError(e.code, e.message, {
      hint: `${e.hint ? `${e.hint}; ` : ""}the server's output: ${inst.stdout}, ${inst.stderr}`,
      cause: e.cause ?? e,
      details: { ...e.details, serverLogs: [inst.stdout, inst.stderr] },
    });
  } finally {
    await Promise.allSettled(digests); // no digest still reading what the abort below removes
    timeline.stop();
    gpu?.close();
    closeAhead(cudaAhead);
    if (!keepServer) {
      // Invariant: a capture that did not finish leaves no server running and no snapshot behind.
      // (After a commit, abort only removes the lock; the snapshot folder has moved into place.)
      if (server && !server.hasExited()) await killTree(server.pid, 2_000);
      await staging.abort();
      await dropRecord(inst);
    }
    if (!succeeded && dumpStarted) {
      // Invariant: a dump that committed nothing leaves no network-lock table (CRIU removes its own when it fails,
      // not when it is killed or when the capture fails after it).
      const table = await lockTableOfLog(dumpLog);
      const err = await removeLockTableQuietly(table);
      if (err) events.log(`could not remove the network-lock table ${table} of this dump: ${err.message}`, "warn");
    }
    supervisor.release();
    // The server's logs stay in the instance folder after a failure (error hints point there); after a
    // success they are in the snapshot, and the folder goes unless the server lives on as an instance.
    if (succeeded && !keepServer) await rm(inst.dir, { recursive: true, force: true });
  }
}

interface Digested {
  files: FileEntry[];
  stamps: Map<string, Stamp>;
}

/**
 * Stamps `inputs` (a restore in this boot then re-hashes only what changed since), then digests them in the
 * background as the phase `phase`, with half the cores (the capture goes on beside it and awaits the result),
 * or all of them when nothing else is left to do (`last`).
 */
function digestBeside(dir: string, inputs: DigestInput[], phase: string, events: Events, last = false, known?: KnownChunks): Promise<Digested> {
  const done = (async () => {
    const stamps = await stampFiles(dir, inputs);
    if (inputs.length === 0) return { files: [], stamps };
    const concurrency = last ? availableParallelism() : Math.max(1, Math.ceil(availableParallelism() / 2));
    const files = await events.phase(
      phase,
      () => digestFiles(dir, inputs, { events, phase, concurrency, ...(known ? { known } : {}) }),
      (f) => ({ bytes: f.reduce((a, e) => a + e.size, 0) - knownBytes(known) }),
    );
    return { files, stamps };
  })();
  done.catch(() => undefined); // awaited by the capture, or settled in its finally
  return done;
}

/** Bytes whose digests were computed while CRIU wrote them (not hashed again in the phase that reuses them). */
function knownBytes(known?: KnownChunks): number {
  return [...(known?.values() ?? [])].reduce((a, k) => a + k.chunks.length * k.chunkSize, 0);
}

function withoutFiles(state: Record<string, unknown>): Record<string, unknown> {
  const { files: _files, ...rest } = state;
  return rest;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new StasisError("E_INTERRUPTED", "capture interrupted", { hint: "nothing was kept; run it again" });
}

async function filesUnder(root: string, sub: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(root, p));
    }
  };
  await walk(join(root, sub));
  return out.sort();
}
