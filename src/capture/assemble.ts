import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { VERSION } from "../version.js";
import type { Criu } from "../criu/locate.js";
import { DUMPABLE_ENV } from "../launch/launch.js";
import type { canaryRecord } from "../engines/canary.js";
import type { Engine, EngineState } from "../engines/engine.js";
import type { TimelinePhase } from "../events.js";
import { machineFingerprint } from "../fingerprint/fingerprint.js";
import { MANIFEST_SCHEMA, type Manifest } from "../store/manifest.js";
import { PRIVATE_DIR, restrictTree } from "../store/private.js";
import type { Stamp } from "../store/verified.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import { captureCaches } from "./caches.js";
import { digestBeside, type Digested } from "./digests.js";
import type { Dumped } from "./dump.js";
import type { CaptureRun } from "./run.js";
import type { CaptureOptions } from "./capture.js";

/** What the capture learnt of the server before the dump. */
export interface ServerFacts {
  baseUrl: string;
  readyPath: string;
  rootPid: number;
  canary: ReturnType<typeof canaryRecord>;
  identity: Awaited<ReturnType<Engine["identify"]>>;
  engineState: EngineState;
  engineFiles: Promise<Digested>;
  coldStartMs: number;
}

/**
 * Step "caches" (the compile caches of engines that compile: vLLM; a plain HTTP server has none worth keeping), the
 * capture's logs copied into the snapshot, "digest-caches"; then, every digest done, the manifest: what a restore
 * needs, and the capture's timings from its `phases`.
 */
export async function assembleManifest(
  p: Pipeline,
  run: CaptureRun,
  opts: CaptureOptions,
  criu: Criu,
  server: ServerFacts,
  dumped: Dumped,
  timing: { phases: TimelinePhase[]; startedMs: number },
): Promise<{ manifest: Manifest; stamps: Map<string, Stamp> }> {
  const { staging, inst } = run;
  const env = { ...(opts.baseEnv ?? process.env), ...DUMPABLE_ENV, ...opts.env };
  const caches =
    opts.engine === "vllm"
      ? await p.step("caches", () => captureCaches(env, staging.dir, opts.config.maxCacheBytes, p.events))
      : [];
  await restrictTree(staging.dir); // tar wrote the caches with stasis's own umask
  await mkdir(join(staging.dir, "logs"), { recursive: true, mode: PRIVATE_DIR });
  await copyFile(inst.stdout, join(staging.dir, "logs", "capture-stdout.log"));
  await copyFile(inst.stderr, join(staging.dir, "logs", "capture-stderr.log"));
  await copyFile(dumped.dump.logPath, join(staging.dir, "logs", "criu-dump.log"));
  const cacheInputs = caches.map((c) => ({ path: c.file, role: "cache" as const }));
  const cacheFiles = digestBeside(p, staging.dir, cacheInputs, "digest-caches", true);
  const parts = await Promise.all([dumped.imageFiles, cacheFiles, server.engineFiles]);
  const { gpu, dump, networkLockTable } = dumped;
  const fingerprint = await machineFingerprint({
    criuVersion: criu.version,
    gpu: gpu?.inventory,
    usedGpuUuids: gpu?.usedGpuUuids,
    engine: server.identity,
  });
  const timings: Record<string, number> = { coldStartMs: server.coldStartMs };
  for (const ph of timing.phases) timings[ph.name] = Math.round(ph.ms);
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    name: opts.name,
    createdAt: new Date().toISOString(),
    stasisVersion: VERSION,
    command: { argv: opts.argv, cwd: opts.cwd, env: { ...DUMPABLE_ENV, ...opts.env } },
    server: { url: server.baseUrl, readyPath: server.readyPath, stdoutPath: inst.stdout, stderrPath: inst.stderr },
    engine: { kind: opts.engine, canary: server.canary, state: withoutFiles(server.engineState) },
    fingerprint,
    tree: { rootPid: server.rootPid, processes: dumped.tree.length, cudaProcesses: gpu?.processes.length ?? 0 },
    gpu: gpu?.manifest(),
    criu: { options: dump.options, ...(networkLockTable ? { networkLockTable } : {}) },
    caches,
    linkRemaps: dumped.linkRemaps,
    shmFiles: dumped.shmFiles,
    listeners: dumped.listeners,
    addresses: dumped.addresses,
    periodicTimers: dumped.timers,
    files: parts.flatMap((d) => d.files),
    timings,
  };
  manifest.timings.totalMs = Math.round(p.events.t() - timing.startedMs);
  return { manifest, stamps: new Map(parts.flatMap((d) => [...d.stamps])) };
}

function withoutFiles(state: Record<string, unknown>): Record<string, unknown> {
  const { files: _files, ...rest } = state;
  return rest;
}
