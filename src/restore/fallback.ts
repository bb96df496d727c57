import type { Config } from "../config/config.js";
import { join } from "node:path";
import { launch } from "../launch/launch.js";
import { engineFor } from "../engines/engines.js";
import { sha256 } from "../engines/canary.js";
import { unpackCaches } from "../capture/caches.js";
import { killTree, recordInstance, type Instance } from "../instances/instances.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import type { Claimed } from "./claimed.js";

export interface FallbackResult {
  instance: Instance;
  /** Whether the cold-started server answered the canary as the snapshot did (a different GPU may not). */
  canaryMatched: boolean;
}

/**
 * `restore --fallback warm`: the snapshot's process image cannot be used here, so start its command the
 * ordinary way, but with the compile caches captured in the snapshot, so the server skips compilation.
 * Steps: unpack-caches -> launch -> ready -> canary (a different answer is a warning) -> the instance recorded.
 */
export async function warmStart(
  p: Pipeline,
  { snap, claim, supervisor }: Claimed,
  opts: { readyTimeoutMs: number; config: Pick<Config, "ioUringFilter"> },
): Promise<FallbackResult> {
  const { events } = p;
  const m = snap.manifest;
  const cacheEnv = await p.step("unpack-caches", () => unpackCaches(snap.dir, m.caches, join(claim.dir, "caches")));
  const server = await p.step("launch", () =>
    launch({
      argv: m.command.argv,
      cwd: m.command.cwd,
      env: { ...m.command.env, ...cacheEnv },
      ioUringFilter: opts.config.ioUringFilter,
      stdout: claim.stdout,
      stderr: claim.stderr,
    }),
  );
  supervisor.group(server.pid); // it leads its own process group
  const started = p.defer("the started server", () => killTree(server.pid, 2_000));
  const engine = await engineFor(m.engine.kind);
  const ctx = {
    baseUrl: m.server.url,
    events,
    signal: p.signal,
    alive: () => !server.hasExited(),
    logPath: claim.stderr,
  };
  await p.step("ready", () => engine.waitReady(ctx, m.server.readyPath, opts.readyTimeoutMs));
  const c = m.engine.canary;
  const answer = await p.step("canary", () => engine.canary(ctx, { method: c.method, path: c.path, body: c.body }));
  const canaryMatched = answer.status === c.status && sha256(answer.text) === c.sha256;
  if (!canaryMatched)
    events.log(
      "the cold-started server answers the canary differently from the snapshot (expected on another GPU or driver)",
      "warn",
    );
  const instance = await recordInstance({
    id: claim.id,
    snapshot: snap.name,
    origin: "restore",
    pid: server.pid,
    url: m.server.url,
    createdAt: new Date().toISOString(),
    dir: claim.dir,
    stdout: claim.stdout,
    stderr: claim.stderr,
  });
  server.detach();
  started.keep();
  return { instance, canaryMatched };
}
