import { launch, type Launched } from "../launch/launch.js";
import { processTree, readStat } from "../proc/tree.js";
import { cudaCandidates } from "../cuda/tree.js";
import type { Engine, EngineContext } from "../engines/engine.js";
import { dropRecord, killTree, recordInstance, selfAsOwner } from "../instances/instances.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";
import { refuseForeignListener } from "./server-guard.js";
import type { CaptureRun } from "./run.js";
import type { CaptureOptions } from "./capture.js";

/** The server a capture launched, what the engine adapter is told about it, and its hold on the cleanup stack. */
export interface Server {
  launched: Launched;
  ctx: EngineContext;
  /** Date.now() as it was launched: its own shared-memory files are those created since. */
  launchedAtMs: number;
  /** The server, ended should the capture fail (unless it ended itself), and its instance record, dropped. */
  held: Deferred[];
}

/**
 * Step "launch": starts the server (its process group under the capture's supervisor) and records it as an instance
 * in state "capturing" at once: a capture killed from here on leaves a server (and soon a CRIU network-lock table)
 * that the next command removes with the staging folder (leftovers.ts).
 */
export async function launchServer(
  p: Pipeline,
  run: CaptureRun,
  opts: CaptureOptions,
  baseUrl: string,
): Promise<Server> {
  const { inst, supervisor } = run;
  const launchedAtMs = Date.now();
  const launched = await p.step("launch", () =>
    launch({
      argv: opts.argv,
      cwd: opts.cwd,
      env: opts.env,
      ...(opts.baseEnv ? { baseEnv: opts.baseEnv } : {}),
      ioUringFilter: opts.config.ioUringFilter,
      stdout: inst.stdout,
      stderr: inst.stderr,
      spawned: (pid) => supervisor.group(pid),
    }),
  );
  run.server = launched;
  const server = p.defer("the launched server", async () => {
    if (!launched.hasExited()) await killTree(launched.pid, 2_000);
  });
  const owner = await selfAsOwner();
  const createdAt = new Date().toISOString();
  const record = {
    id: run.id,
    snapshot: opts.name,
    origin: "capture" as const,
    pid: launched.pid,
    url: baseUrl,
    createdAt,
  };
  await recordInstance({ ...record, ...inst, state: "capturing", owner });
  const recorded = p.defer("the capture's instance record", () => dropRecord(inst));
  const serverStart = (await readStat(launched.pid))?.startTime;
  const owned = serverStart === undefined ? {} : { server: { pid: launched.pid, startTime: serverStart } };
  await run.staging.noteOwner({ criuLog: run.dumpLog, ...owned });
  const ctx: EngineContext = {
    baseUrl,
    events: p.events,
    signal: p.signal,
    alive: () => !launched.hasExited(),
    logPath: inst.stderr,
    allowFullImage: opts.allowFullImage,
    usesGpu: async () => (await cudaCandidates((await processTree(launched.pid)).map((t) => t.pid))).length > 0,
  };
  return { launched, ctx, launchedAtMs, held: [server, recorded] };
}

/** Step "ready": the server answers its ready URL, and it is the launched tree that answers (server-guard.ts). */
export function waitReady(
  p: Pipeline,
  engine: Engine,
  server: Server,
  opts: CaptureOptions,
  readyPath: string,
): Promise<void> {
  return p.step("ready", async () => {
    await engine.waitReady(server.ctx, readyPath, opts.readyTimeoutMs);
    await refuseForeignListener(opts.readyUrl, server.launched.pid, "when the ready URL answered");
  });
}
