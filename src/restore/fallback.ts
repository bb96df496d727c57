import { join } from "node:path";
import type { Events } from "../events.js";
import { launch } from "../launch/launch.js";
import { engineFor } from "../engines/engines.js";
import { sha256 } from "../engines/canary.js";
import { unpackCaches } from "../capture/caches.js";
import { killTree, recordInstance, type Instance } from "../instances/instances.js";
import type { Snapshot } from "../store/store.js";

export interface FallbackResult {
  instance: Instance;
  /** Whether the cold-started server answered the canary as the snapshot did (a different GPU may not). */
  canaryMatched: boolean;
}

/**
 * `restore --fallback warm`: the snapshot's process image cannot be used here, so start its command the
 * ordinary way, but with the compile caches captured in the snapshot, so the server skips compilation.
 */
export async function warmStart(
  snap: Snapshot,
  inst: { id: string; dir: string; stdout: string; stderr: string },
  opts: { readyTimeoutMs: number; signal?: AbortSignal },
  events: Events,
  launched?: (pgid: number) => void,
): Promise<FallbackResult> {
  const m = snap.manifest;
  const cacheEnv = await events.phase("unpack-caches", () => unpackCaches(snap.dir, m.caches, join(inst.dir, "caches")));
  const server = await events.phase("launch", () =>
    launch({ argv: m.command.argv, cwd: m.command.cwd, env: { ...m.command.env, ...cacheEnv }, stdout: inst.stdout, stderr: inst.stderr }),
  );
  launched?.(server.pid); // it leads its own process group
  try {
    const engine = engineFor(m.engine.kind);
    const ctx = { baseUrl: m.server.url, events, signal: opts.signal, alive: () => !server.hasExited(), logPath: inst.stderr };
    await events.phase("ready", () => engine.waitReady(ctx, m.server.readyPath, opts.readyTimeoutMs));
    const c = m.engine.canary;
    const answer = await events.phase("canary", () => engine.canary(ctx, { method: c.method, path: c.path, body: c.body }));
    const canaryMatched = answer.status === c.status && sha256(answer.text) === c.sha256;
    if (!canaryMatched) events.log("the cold-started server answers the canary differently from the snapshot (expected on another GPU or driver)", "warn");
    const instance = await recordInstance({
      id: inst.id,
      snapshot: snap.name,
      origin: "restore",
      pid: server.pid,
      url: m.server.url,
      createdAt: new Date().toISOString(),
      dir: inst.dir,
      stdout: inst.stdout,
      stderr: inst.stderr,
    });
    server.detach();
    return { instance, canaryMatched };
  } catch (err) {
    await killTree(server.pid, 2_000);
    throw err;
  }
}
