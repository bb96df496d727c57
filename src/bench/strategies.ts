import type { Config } from "../config/config.js";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { TimelinePhase } from "../events.js";
import { Events, recordTimeline } from "../events.js";
import { launch } from "../launch/launch.js";
import { engineFor } from "../engines/engines.js";
import type { CanaryRequest, EngineContext } from "../engines/engine.js";
import { findInstance, killTree, stopInstance } from "../instances/instances.js";
import type { Snapshot } from "../store/store.js";
import { StasisError } from "../errors.js";
import { cacheEnv, diskBytesRead, diskReadSince, dropPageCache, sampleDisk, type DiskSample } from "./system.js";
import { createdSince, removePlaced, sharedMemoryFiles } from "../criu/kept-files.js";
import { processTree } from "../proc/tree.js";
import { releaseDaemonWeights, restoreViaDaemon } from "../serve/client.js";
import { prefetch as prefetchSnapshot } from "../commands/prefetch.js";
import type { MemoryMode, PrefetchMode, VerifyMode, WeightsMode } from "../restore/modes.js";

export const STRATEGIES = ["cold", "warm", "restore-hot", "restore-cold"] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** One measured start of a server. Times are ms from the start of the strategy's command. */
export interface Run {
  strategy: Strategy;
  readyMs: number;
  firstTokenMs: number;
  phases: TimelinePhase[];
  /** What the case did to the machine first (page cache dropped, files prefetched). */
  setup: string;
  /** Cold cases: bytes read from the machine's disks from the start until the first token (diskBytesRead). */
  diskBytesRead?: number;
  /** restore-cold: the disks every 100 ms from the start until the first token (sampleDisk), on this run's clock. */
  disk?: DiskSample[];
}

function canaryOf(snap: Snapshot): CanaryRequest {
  const c = snap.manifest.engine.canary;
  return { method: c.method, path: c.path, ...(c.body === undefined ? {} : { body: c.body }) };
}

/**
 * Starts the captured command the ordinary way: `cold` with the page cache dropped and every compile cache
 * empty, `warm` with the compile caches in `warmCacheDir` (the snapshot's captured caches, or filled by an
 * unmeasured start first) and the page cache as it is. Ready = the readiness URL answers; first token = the
 * first answer to a real request.
 */
export async function startServer(
  snap: Snapshot,
  strategy: "cold" | "warm",
  warmCacheDir: string,
  config: Pick<Config, "ioUringFilter">,
): Promise<Run> {
  const m = snap.manifest;
  const scratch = await mkdtemp(join(tmpdir(), "stasis-bench-"));
  const caches = strategy === "cold" ? join(scratch, "caches") : warmCacheDir;
  if (strategy === "cold") await dropPageCache();
  const readBefore = strategy === "cold" ? await diskBytesRead() : undefined;
  const events = new Events();
  const timeline = recordTimeline(events);
  const engine = await engineFor(m.engine.kind);
  const launchedAtMs = Date.now();
  const server = await events.phase("launch", () =>
    launch({
      argv: m.command.argv,
      cwd: m.command.cwd,
      env: { ...m.command.env, ...cacheEnv(caches) },
      ioUringFilter: config.ioUringFilter,
      stdout: join(scratch, "stdout.log"),
      stderr: join(scratch, "stderr.log"),
    }),
  );
  try {
    const ctx: EngineContext = {
      baseUrl: m.server.url,
      events,
      alive: () => !server.hasExited(),
      logPath: join(scratch, "stderr.log"),
    };
    await events.phase("ready", () => engine.waitReady(ctx, m.server.readyPath, 900_000));
    const readyMs = events.t();
    await events.phase("first-token", () => engine.firstToken(ctx, canaryOf(snap)));
    const firstTokenMs = events.t();
    const diskRead = await diskReadSince(readBefore);
    return {
      strategy,
      readyMs,
      firstTokenMs,
      phases: timeline.phases,
      setup:
        strategy === "cold" ? "page cache dropped, compile caches empty" : "compile caches filled, page cache warm",
      ...(diskRead === undefined ? {} : { diskBytesRead: diskRead }),
    };
  } finally {
    timeline.stop();
    // Its own shared-memory files (vLLM's psm_*, hundreds of MB of RAM each) outlive a server whose children are
    // killed: noted before, removed after.
    const own = await createdSince(
      await sharedMemoryFiles((await processTree(server.pid)).map((p) => p.pid)),
      launchedAtMs,
    );
    await killTree(server.pid, 10_000);
    await removePlaced(own);
    await rm(scratch, { recursive: true, force: true });
  }
}

/** What a restore for the benchmark is asked to do; `via`: how it is asked (see restoreServer). */
export interface RestoreArgs {
  verify: VerifyMode;
  prefetch: PrefetchMode;
  memory: MemoryMode;
  weights: WeightsMode;
  via: "cli" | "api";
  config: Config;
}

interface Restored {
  readyMs: number;
  result: { instance: { id: string; pid: number }; phases: TimelinePhase[]; via?: string };
}

/**
 * The server as a user gets it: `stasis restore` in a child process, timed from its spawn (via "cli"), or, via
 * "api", a restore request to the running `stasis serve` as a fleet's controller sends it (no CLI process),
 * timed from the request. The first gap of the timeline is then "cli-overhead" or "request".
 */
export async function restoreServer(
  snap: Snapshot,
  strategy: "restore-hot" | "restore-cold",
  args: RestoreArgs,
): Promise<Run> {
  const m = snap.manifest;
  let released: number | undefined;
  let pinned = false;
  if (strategy === "restore-cold") {
    // Cold means no copy of the snapshot in memory at all: not in the page cache, nor pinned by `stasis serve
    // --pin-weights` (whose keepers free them here and stay up; the next restore reads the weights from the file).
    released = await releaseDaemonWeights();
    await dropPageCache();
  } else {
    // Hot: what `stasis prefetch --snapshot` leaves: the snapshot's files in the page cache, its working set (the
    // engine's libraries its restore touches), CRIU's own files and, where `stasis serve --pin-weights` runs, its
    // weights pinned by the daemon. (The first restore-hot of a bench is still the slowest with all of that in memory:
    // an open question in docs/benchmarks.md.)
    const hot = await prefetchSnapshot({ paths: [], snapshot: snap.name, config: args.config }, new Events());
    pinned = hot.daemonPin !== undefined && "pinned" in hot.daemonPin;
  }
  const readBefore = strategy === "restore-cold" ? await diskBytesRead() : undefined;
  const sampler = strategy === "restore-cold" ? sampleDisk() : undefined;
  const started = performance.now();
  const { readyMs, result } = await (
    args.via === "api" ? restoreByRequest(snap, args, started) : restoreByCli(snap, args, started)
  ).catch(async (e: unknown) => {
    await sampler?.stop();
    throw e;
  });
  try {
    const events = new Events();
    const ctx: EngineContext = { baseUrl: m.server.url, events, alive: () => true, logPath: "" };
    await (await engineFor(m.engine.kind)).firstToken(ctx, canaryOf(snap));
    const firstTokenMs = performance.now() - started;
    const disk = await sampler?.stop();
    const diskRead = await diskReadSince(readBefore);
    // The CLI's own phases are relative to its start, which is a little after the spawn: shift them onto this clock.
    const offset = readyMs - Math.max(0, ...(result.phases ?? []).map((p) => p.endMs));
    const phases = [
      {
        name: args.via === "api" ? "request" : "cli-overhead",
        startMs: 0,
        endMs: Math.max(0, offset),
        ms: Math.max(0, offset),
        ok: true,
      },
      ...(result.phases ?? []).map((p) => ({ ...p, startMs: p.startMs + offset, endMs: p.endMs + offset })),
      { name: "first-token", startMs: readyMs, endMs: firstTokenMs, ms: firstTokenMs - readyMs, ok: true },
    ];
    return {
      strategy,
      readyMs,
      firstTokenMs,
      phases,
      setup: `${strategy === "restore-cold" ? `page cache dropped${released ? ", the daemon's pinned weights released" : ""}` : `snapshot files and its working set in the page cache${pinned ? ", its weights pinned by the daemon" : ""}`}${args.via === "api" ? ", a request to `stasis serve`" : result.via === "daemon" ? ", through `stasis serve`" : ""}`,
      ...(diskRead === undefined ? {} : { diskBytesRead: diskRead }),
      ...(disk && disk.length > 0 ? { disk } : {}),
    };
  } finally {
    await sampler?.stop();
    await stopInstance(await findInstance(result.instance.id), 10_000);
  }
}

async function restoreByCli(snap: Snapshot, args: RestoreArgs, started: number): Promise<Restored> {
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  const cli = [
    "restore",
    snap.name,
    "--json",
    "--verify",
    args.verify,
    "--prefetch",
    args.prefetch,
    "--memory",
    args.memory,
    "--weights",
    args.weights,
  ];
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...cli], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  const readyMs = performance.now() - started;
  // The CLI's document (stasis.restore/v1) names a phase's duration durationMs; the report's phases say ms.
  type DocPhase = Omit<TimelinePhase, "ms"> & { durationMs: number };
  type Doc = Partial<Omit<Restored["result"], "phases">> & {
    phases?: DocPhase[];
    error?: { code: string; message: string };
  };
  const result = JSON.parse(out.stdout || "{}") as Doc;
  if (out.code !== 0 || !result.instance) {
    throw new StasisError(
      "E_CRIU_RESTORE",
      `restore for the benchmark failed: ${result.error?.message ?? out.stderr.trim().split("\n").pop()}`,
    );
  }
  const phases = (result.phases ?? []).map(({ durationMs, ...p }) => ({ ...p, ms: durationMs }));
  return { readyMs, result: { instance: result.instance, phases, via: result.via } };
}

async function restoreByRequest(snap: Snapshot, args: RestoreArgs, started: number): Promise<Restored> {
  const r = await restoreViaDaemon(
    {
      name: snap.name,
      verify: args.verify,
      prefetch: args.prefetch,
      memory: args.memory,
      weights: args.weights,
      force: false,
      readyTimeoutMs: 120_000,
    },
    new Events(),
  );
  if (!r)
    throw new StasisError("E_USAGE", "--via api: no `stasis serve` answers on this machine", {
      hint: "start `stasis serve` first, or bench --via cli",
    });
  return { readyMs: performance.now() - started, result: { instance: r.instance, phases: r.phases, via: "daemon" } };
}
