import type { Config } from "../config/config.js";
import { StasisError, asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { recordTimeline } from "../events.js";
import { locateCriu } from "../criu/locate.js";
import { processTree } from "../proc/tree.js";
import { engineFor } from "../engines/engines.js";
import type { CanaryRequest } from "../engines/engine.js";
import type { Manifest } from "../store/manifest.js";
import type { Instance } from "../instances/instances.js";
import { restrictTree } from "../store/private.js";
import { outOfSpace } from "../store/space.js";
import { stasisHome } from "../home.js";
import { runPipeline } from "../pipeline/pipeline.js";
import { checkBeforeLaunch } from "./preflight.js";
import { vllmLaunchDefaults } from "../engines/vllm-command.js";
import { cudaWorkerAhead } from "./gpu.js";
import { removeDeadCaptures } from "./leftovers.js";
import { beginCapture, type CaptureRun } from "./run.js";
import { launchServer, waitReady } from "./server.js";
import { warmUpAndRecordCanary } from "./canary.js";
import { digestBeside } from "./digests.js";
import { cudaAhead, dumpServer } from "./dump.js";
import { assembleManifest } from "./assemble.js";
import { commitSnapshot, handOver } from "./commit.js";

export interface CaptureOptions {
  name: string;
  argv: string[];
  cwd: string;
  /** Set on top of the caller's environment (after stasis's own dumpability settings). */
  env: Record<string, string>;
  /** The caller's environment when it is not this process's (`stasis serve` capturing for a CLI); not recorded. */
  baseEnv?: Record<string, string>;
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
  /** The STASIS_* settings (config/knobs.ts). */
  config: Config;
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
 * Starts a server, warms it up, records its canary and snapshots it. Its steps, each in its own module of
 * src/capture/: preflight (preflight.ts) -> launch, ready (server.ts) -> warmup, canary (canary.ts) -> engine-prepare
 * (vLLM: dump weights, sleep), its files digested in the background (digests.ts) -> cuda checkpoint -> criu-dump, its
 * pages digested as CRIU writes them -> link_remap and shared-memory files kept -> digest-images (dump.ts) ->
 * caches, digest-caches -> manifest (assemble.ts) -> commit, and the hand-over (commit.ts).
 *
 * The snapshot appears only when all of it succeeded. Each step that takes something (the supervisor, the staging
 * folder, the server and its record, the CUDA worker, the dump's network-lock table) pushes its undo on the capture's
 * cleanup stack (src/pipeline/): on any failure or an interrupt the server is stopped, the half-written snapshot
 * removed, and no network-lock table is left. While it runs, the server is an instance in state "capturing" (`stasis
 * ps` lists it) under a supervisor (instances/supervisor.ts) that ends it should this process die first; with
 * --leave-running it becomes an ordinary instance once the snapshot is committed.
 */
export async function capture(given: CaptureOptions, events: Events): Promise<CaptureResult> {
  const opts = withEngineDefaults(given);
  const timeline = recordTimeline(events);
  const started = events.t();
  const engine = await engineFor(opts.engine);
  const baseUrl = new URL(opts.readyUrl).origin;
  const readyPath = new URL(opts.readyUrl).pathname + new URL(opts.readyUrl).search;
  const interrupted = () =>
    new StasisError("E_INTERRUPTED", "capture interrupted", { hint: "nothing was kept; run it again" });
  return runPipeline(events, { signal: opts.signal, interrupted }, async (p) => {
    p.defer("the timeline", timeline.stop);
    const criu = await p.step("preflight", async () => {
      await checkBeforeLaunch(opts, { warn: (m) => events.log(m, "warn") });
      await removeDeadCaptures(events);
      return locateCriu(opts.config.criu);
    });
    const run = await beginCapture(p, opts.name);
    try {
      const server = await launchServer(p, run, opts, baseUrl);
      const root = server.launched.pid;
      await waitReady(p, engine, server, opts, readyPath);
      const coldStartMs = events.t() - started;
      const driver = cudaWorkerAhead((await processTree(root)).map((t) => t.pid));
      const ahead = { driver, held: cudaAhead(p, driver) };
      const canary = await warmUpAndRecordCanary(p, engine, server, opts);
      const identity = await engine.identify(server.ctx);
      const engineState = await p.step("engine-prepare", () => engine.prepareCapture(server.ctx, run.staging.dir));
      // The server wrote the engine's files with its own umask: root's alone before they are stamped (a later chmod
      // would change their ctime and void the stamp).
      await restrictTree(run.staging.dir);
      p.throwIfInterrupted();
      // The engine's files (its weights) are complete: digested while the GPU is checkpointed and CRIU dumps.
      const engineInputs = (engineState.files ?? []).map((f) => ({ path: f.path, role: f.role }));
      const engineFiles = digestBeside(p, run.staging.dir, engineInputs, "digest-engine-files");
      const dumped = await dumpServer(p, run, opts, criu, root, ahead);
      if (opts.leaveRunning) {
        await dumped.gpu?.resume(events);
        await p.step("engine-resume", () => engine.resume(server.ctx, engineState, run.staging.dir));
      } else {
        await server.launched.exited;
      }
      const facts = { baseUrl, readyPath, rootPid: root, canary, identity, engineState, engineFiles, coldStartMs };
      const timing = { phases: timeline.phases, startedMs: started };
      const { manifest, stamps } = await assembleManifest(p, run, opts, criu, facts, dumped, timing);
      const dir = await commitSnapshot(p, run, dumped, manifest, stamps);
      const instance = await handOver(run, server, dumped, opts);
      return { name: opts.name, dir, manifest, instance, phases: timeline.phases };
    } catch (err) {
      throw await explain(err, run);
    }
  });
}

/** The caller's options with what the engine's server gets unless told otherwise (vllm-command.ts), recorded in
 *  the manifest's command like the rest of its environment. */
function withEngineDefaults(opts: CaptureOptions): CaptureOptions {
  if (opts.engine !== "vllm") return opts;
  const defaults = vllmLaunchDefaults(opts.argv, { ...(opts.baseEnv ?? process.env), ...opts.env });
  return { ...opts, env: { ...defaults, ...opts.env } };
}

/**
 * A capture's failure as the user is told it: a full disk said as such, with what the snapshot had written (measured
 * before the staging folder is removed), and the server's output named, unless the hint already does.
 */
async function explain(err: unknown, { server, staging, inst }: CaptureRun): Promise<StasisError> {
  const tree = server && !server.hasExited() ? (await processTree(server.pid).catch(() => [])).map((t) => t.pid) : [];
  const e = (await outOfSpace(asStasisError(err), staging.dir, stasisHome(), tree)) ?? asStasisError(err);
  if (!server || (e.hint ?? "").includes(inst.dir)) return e;
  return new StasisError(e.code, e.message, {
    hint: `${e.hint ? `${e.hint}; ` : ""}the server's output: ${inst.stdout}, ${inst.stderr}`,
    cause: e.cause ?? e,
    details: { ...e.details, serverLogs: [inst.stdout, inst.stderr] },
  });
}
