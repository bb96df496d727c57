import { asStasisError } from "../errors.js";
import type { Events } from "../events.js";
import { findInstance, stopInstance } from "../instances/instances.js";
import { criuMemory, restore, type RestoreOptions, type RestoreResult } from "./restore.js";
import { locateCriu } from "../criu/locate.js";
import { stageWeights, type StagedWeights } from "../engines/weights-stager.js";
import { beginPull, type PullOptions, type PullResult } from "../remote/pull.js";
import { forCriu, type PullStream } from "../remote/stream.js";

export type RemoteRestoreOptions = Omit<RestoreOptions, "name"> & Omit<PullOptions, "reuse" | "as" | "force">;

/**
 * `stasis restore s3://bucket/prefix/NAME`: restores a snapshot while it arrives. The pull fetches what the restore
 * needs first (CRIU's images, then the weights, then the rest: stream.ts); the restore runs from its staging
 * folder, CRIU starting once its images are whole, the weights stager once the weights file is, the engine once
 * every file is. Each chunk is checked against its sha256 before it is written, so the restore hashes nothing
 * again (--verify has nothing left to do). Once the instance serves, the folder becomes the snapshot in the store.
 * A transfer that fails stops the restore (its error reported, not the restore's), and a restore that fails stops
 * the transfer: either way nothing is left running, no snapshot appears, and the node's cache keeps the chunks
 * checked so far, for the next try. A snapshot the store has already (same files) is restored from there.
 */
export async function restoreFromRemote(
  opts: RemoteRestoreOptions,
  events: Events,
): Promise<RestoreResult & { pull: PullResult }> {
  const { from, endpoint, env, ...request } = opts;
  const pullOptions = { from, endpoint, env, force: request.force, reuse: true, config: request.config };
  const begun = await beginPull(pullOptions, events);
  if ("reused" in begun) {
    return { ...(await restore({ ...request, name: begun.reused.snapshot }, events)), pull: begun.reused };
  }
  const { stream } = begun;
  const name = stream.snapshot.name;
  // The transfer's failure stops the restore wherever it is (CRIU, the engine's resume), as Ctrl-C would; Ctrl-C
  // stops the transfer too (a restore waiting for its images would wait for them otherwise).
  const stop = new AbortController();
  const onAbort = () => {
    stream.stop();
    stop.abort(request.signal?.reason);
  };
  request.signal?.addEventListener("abort", onAbort, { once: true });
  stream.done.catch(() => stop.abort());
  let result: RestoreResult;
  try {
    // The files are written through the page cache: CRIU reads its images there, as --memory auto chooses then.
    const auto = !request.memory || request.memory === "auto";
    const memory = auto ? criuMemory("auto", await locateCriu(request.config.criu), true) : request.memory;
    result = await restore(
      { ...request, name, verify: "size", prefetch: "none", memory, signal: stop.signal },
      events,
      {
        arriving: { snap: stream.snapshot, criuFiles: () => stream.whole(forCriu), all: () => stream.whole() },
        stager: (job) => afterWeights(stageWeights(job), stream),
      },
    );
  } catch (err) {
    await stream.abort();
    throw asStasisError((!request.signal?.aborted && stream.failure()) || err);
  } finally {
    request.signal?.removeEventListener("abort", onAbort);
  }
  try {
    return { ...result, pull: await begun.finish() };
  } catch (err) {
    // Invariant: a restore s3:// that fails leaves nothing running, whatever step failed.
    await stopInstance(await findInstance(result.instance.id), 1_000).catch(() => undefined);
    await stream.abort();
    throw err;
  }
}

/**
 * A stager that holds its reads until the weights file is whole (and the restore says go), never before; a
 * transfer that fails ends it (the restore then fails with the transfer's error).
 */
export function afterWeights(staged: StagedWeights, stream: Pick<PullStream, "whole">): StagedWeights {
  const weights = stream.whole((f) => f.role === "weights");
  weights.catch(() => undefined); // a restore that never says go (it failed first) reports the failure itself
  let asked = false;
  return {
    ready: () => staged.ready(),
    go: () => {
      if (asked) return;
      asked = true;
      void weights.then(
        () => staged.go(),
        () => staged.stop(),
      );
    },
    stop: () => staged.stop(),
  };
}
