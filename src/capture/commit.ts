import { createdSince } from "../criu/kept-files.js";
import { forgetInstance, recordInstance, type Instance } from "../instances/instances.js";
import type { Manifest } from "../store/manifest.js";
import { recordVerified, type Stamp } from "../store/verified.js";
import type { Pipeline } from "../pipeline/pipeline.js";
import type { CaptureRun } from "./run.js";
import type { Dumped } from "./dump.js";
import type { Server } from "./server.js";
import type { CaptureOptions } from "./capture.js";

/**
 * Step "commit": the snapshot appears under its name, its files stamped as verified in this boot, and it owns what
 * the staging folder held, the dump's network-lock table included. Refused once the capture was interrupted: the
 * last moment a cancellation can still keep the snapshot from being committed.
 */
export async function commitSnapshot(
  p: Pipeline,
  run: CaptureRun,
  dumped: Dumped,
  manifest: Manifest,
  stamps: Map<string, Stamp>,
): Promise<string> {
  const dir = await p.step("commit", () => run.staging.commit(manifest));
  run.stagingHeld.keep();
  dumped.lockTable.keep();
  await recordVerified(dir, stamps);
  return dir;
}

/**
 * The end of a capture. With --leave-running the original server becomes an ordinary instance, handed to the caller
 * (off the cleanup stack), its own shared-memory files (created since it started) named for `stop` to remove once it
 * has ended. Otherwise the server is gone, and its logs are in the snapshot: its instance folder goes.
 */
export async function handOver(
  run: CaptureRun,
  server: Server,
  dumped: Dumped,
  opts: CaptureOptions,
): Promise<Instance | undefined> {
  const { inst } = run;
  if (!opts.leaveRunning) {
    await forgetInstance(inst);
    return undefined;
  }
  const ownShm = await createdSince(dumped.shared, server.launchedAtMs);
  const instance = await recordInstance({
    id: run.id,
    snapshot: opts.name,
    origin: "capture",
    pid: server.launched.pid,
    url: server.ctx.baseUrl,
    createdAt: new Date().toISOString(),
    dir: inst.dir,
    stdout: inst.stdout,
    stderr: inst.stderr,
    ...(ownShm.length > 0 ? { placedFiles: ownShm } : {}),
  });
  for (const held of server.held) held.keep();
  server.launched.detach();
  return instance;
}
