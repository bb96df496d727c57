import { availableParallelism } from "node:os";
import { digestFiles, type DigestInput, type KnownChunks } from "../store/digest.js";
import { stampFiles, type Stamp } from "../store/verified.js";
import type { FileEntry } from "../store/manifest.js";
import type { Pipeline } from "../pipeline/pipeline.js";

export interface Digested {
  files: FileEntry[];
  stamps: Map<string, Stamp>;
}

/**
 * How long a failed capture waits for a digest still reading its staging folder before removing it: a digest is not
 * cancelled (it ends at its own pace, its files being local and finite), and the folder must not go while it reads.
 */
const DIGEST_SETTLE_MS = 600_000;

/**
 * Stamps `inputs` (a restore in this boot then re-hashes only what changed since), then digests them in the
 * background as the phase `phase`, with half the cores (the capture goes on beside it and awaits the result),
 * or all of them when nothing else is left to do (`last`). Should the capture fail, it waits for the digest before
 * the staging folder is removed.
 */
export function digestBeside(
  p: Pipeline,
  dir: string,
  inputs: DigestInput[],
  phase: string,
  last = false,
  known?: KnownChunks,
): Promise<Digested> {
  const done = (async () => {
    const stamps = await stampFiles(dir, inputs);
    if (inputs.length === 0) return { files: [], stamps };
    const concurrency = last ? availableParallelism() : Math.max(1, Math.ceil(availableParallelism() / 2));
    const files = await p.step(
      phase,
      () => digestFiles(dir, inputs, { events: p.events, phase, concurrency, ...(known ? { known } : {}) }),
      (f) => ({ bytes: f.reduce((a, e) => a + e.size, 0) - knownBytes(known) }),
    );
    return { files, stamps };
  })();
  settleFirst(p, phase, done);
  return done;
}

/** Pushes a wait for `work` (never rejecting) that a failed capture does before removing what `work` reads. */
export function settleFirst(p: Pipeline, what: string, work: Promise<unknown>): void {
  work.catch(() => undefined); // awaited by the capture, or settled as it unwinds
  p.defer(`the ${what} reads`, () => work.then(noop, noop), { timeoutMs: DIGEST_SETTLE_MS });
}

function noop(): void {}

/** Bytes whose digests were computed while CRIU wrote them (not hashed again in the phase that reuses them). */
function knownBytes(known?: KnownChunks): number {
  return [...(known?.values() ?? [])].reduce((a, k) => a + k.chunks.length * k.chunkSize, 0);
}
