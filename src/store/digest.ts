import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "./manifest.js";
import { prefetch } from "../pagecache/prefetch.js";

/** Files are digested in chunks of this size so that one file's digest can be computed on many cores. */
export const DIGEST_CHUNK = 64 * 1024 * 1024;

interface ChunkJob {
  id: number;
  path: string;
  offset: number;
  length: number;
}

interface ChunkResult {
  id: number;
  sha256?: string;
  bytes?: number;
  error?: string;
  code?: string;
}

/**
 * Hashes chunks on a pool of worker threads. The pool lives for one call: it is created, used and
 * terminated in `finally`, so no thread outlives the operation (a live worker would keep stasis from exiting).
 */
async function hashChunks(jobs: ChunkJob[], onBytes: (n: number) => void, concurrency: number): Promise<Map<number, string>> {
  const results = new Map<number, string>();
  if (jobs.length === 0) return results;
  const size = Math.max(1, Math.min(concurrency, jobs.length));
  const workers = Array.from({ length: size }, () => new Worker(new URL("./_digest-worker.js", import.meta.url)));
  try {
    let next = 0;
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = () => {
              if (next >= jobs.length) return resolve();
              w.postMessage(jobs[next++]);
            };
            w.on("message", (r: ChunkResult) => {
              if (r.error !== undefined) {
                const job = jobs[r.id]!;
                return reject(fsError(Object.assign(new Error(r.error), { code: r.code }), job.path, "digest"));
              }
              results.set(r.id, r.sha256!);
              onBytes(r.bytes!);
              feed();
            });
            w.on("error", reject);
            feed();
          }),
      ),
    );
    return results;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export interface DigestInput {
  /** Relative to `root`. */
  path: string;
  role: FileEntry["role"];
}

/** Digests files under `root` in parallel; returns manifest entries (size, chunk digests, file digest). */
export async function digestFiles(
  root: string,
  inputs: DigestInput[],
  opts: { events?: Events; phase?: string; concurrency?: number; chunkSize?: number } = {},
): Promise<FileEntry[]> {
  const chunkSize = opts.chunkSize ?? DIGEST_CHUNK;
  const sizes = await Promise.all(
    inputs.map(async (f) => {
      try {
        return (await stat(join(root, f.path))).size;
      } catch (err) {
        throw fsError(err, join(root, f.path), "digest");
      }
    }),
  );
  const jobs: ChunkJob[] = [];
  const owners: { file: number; chunk: number }[] = [];
  inputs.forEach((f, i) => {
    const size = sizes[i]!;
    const count = Math.max(1, Math.ceil(size / chunkSize));
    for (let c = 0; c < count; c++) {
      owners.push({ file: i, chunk: c });
      jobs.push({ id: jobs.length, path: join(root, f.path), offset: c * chunkSize, length: Math.min(chunkSize, size - c * chunkSize) });
    }
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  const hashes = await hashChunks(
    jobs,
    (n) => {
      done += n;
      opts.events?.progress(opts.phase ?? "digest", done, total);
    },
    opts.concurrency ?? availableParallelism(),
  );
  return inputs.map((f, i) => {
    const chunks = owners.flatMap((o, id) => (o.file === i ? [hashes.get(id)!] : []));
    return { path: f.path, role: f.role, size: sizes[i]!, chunkSize, chunks, sha256: combine(chunks) };
  });
}

/** The file digest: sha256 over the chunk digests, in order. */
export function combine(chunks: string[]): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/**
 * Checks files under `root` against their manifest entries: size first (cheap, catches truncation), then every
 * chunk's digest. Throws E_DIGEST_MISMATCH naming the first file (and chunk) that differs.
 */
export async function verifyFiles(
  root: string,
  entries: FileEntry[],
  opts: { events?: Events; phase?: string; concurrency?: number } = {},
): Promise<{ bytes: number }> {
  for (const e of entries) {
    let size: number;
    try {
      size = (await stat(join(root, e.path))).size;
    } catch (err) {
      const se = fsError(err, join(root, e.path), "verify");
      throw new StasisError(se.code === "E_FILE_NOT_FOUND" ? "E_DIGEST_MISMATCH" : se.code, `snapshot file ${e.path} is missing or unreadable`, {
        cause: err,
        hint: "the snapshot is incomplete; capture it again",
      });
    }
    if (size !== e.size) {
      throw new StasisError("E_DIGEST_MISMATCH", `snapshot file ${e.path} has ${size} bytes, the manifest says ${e.size}`, {
        hint: "the file was changed after capture; capture the snapshot again",
        details: { path: e.path },
      });
    }
  }
  // Every chunk against its digest, in parallel: the page-cache engine's verified read (the same path a
  // restore's background reads take).
  await prefetch(
    entries.map((e) => ({ path: join(root, e.path), expectSize: e.size, verify: { chunkSize: e.chunkSize, sha256: e.chunks } })),
    { events: opts.events, phase: opts.phase ?? "verify", ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) },
  );
  return { bytes: entries.reduce((a, e) => a + e.size, 0) };
}
