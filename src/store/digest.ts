import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { readdir, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fsError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "./manifest.js";

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
 * Threads that hash chunks, for as long as their owner keeps them: created, used and closed in `finally`, so no
 * thread outlives the operation (a live worker would keep stasis from exiting).
 */
class HashPool {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: { job: ChunkJob; done: (r: ChunkResult) => void; failed: (e: Error) => void }[] = [];
  private readonly running = new Map<Worker, (typeof this.queue)[number]>();
  private alive: number;

  constructor(size: number) {
    this.workers = Array.from(
      { length: Math.max(1, size) },
      () => new Worker(new URL("./_digest-worker.js", import.meta.url)),
    );
    this.idle = [...this.workers];
    this.alive = this.workers.length;
    for (const w of this.workers) {
      w.on("message", (r: ChunkResult) => {
        const task = this.running.get(w)!;
        this.running.delete(w);
        this.idle.push(w);
        task.done(r);
        this.next();
      });
      w.on("error", (err) => {
        // A thread that died takes no more work; once none is left, nothing queued can be hashed.
        this.running.get(w)?.failed(err);
        this.running.delete(w);
        if (--this.alive === 0) for (const task of this.queue.splice(0)) task.failed(err);
      });
    }
  }

  /** The chunk's sha256; an unreadable chunk rejects with the file system's error for its path. */
  hash(job: ChunkJob): Promise<{ sha256: string; bytes: number }> {
    return new Promise((resolve, reject) => {
      if (this.alive === 0) return reject(new Error("no hashing thread is left"));
      const done = (r: ChunkResult) =>
        r.error !== undefined
          ? reject(fsError(Object.assign(new Error(r.error), { code: r.code }), job.path, "digest"))
          : resolve({ sha256: r.sha256!, bytes: r.bytes! });
      this.queue.push({ job, done, failed: reject });
      this.next();
    });
  }

  /** Drops the chunks not yet started (they reject); those being hashed finish. */
  cancelQueued(): void {
    for (const task of this.queue.splice(0)) task.failed(new Error("cancelled"));
  }

  private next(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.running.set(w, task);
      w.postMessage(task.job);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function hashChunks(
  jobs: ChunkJob[],
  onBytes: (n: number) => void,
  concurrency: number,
): Promise<Map<number, string>> {
  const results = new Map<number, string>();
  if (jobs.length === 0) return results;
  const pool = new HashPool(Math.min(concurrency, jobs.length));
  try {
    await Promise.all(
      jobs.map(async (job) => {
        const r = await pool.hash(job);
        results.set(job.id, r.sha256);
        onBytes(r.bytes);
      }),
    );
    return results;
  } finally {
    await pool.close();
  }
}

/** Digests of a file's leading chunks, computed before the file was complete (see `followAppends`). */
export type KnownChunks = Map<string, { chunkSize: number; chunks: string[] }>;

/**
 * Digests files while a writer appends to them: each whole chunk as soon as the file has grown past it. Only for
 * files written front to back, never rewritten (CRIU's pages images, written by one writer): a chunk is read
 * once the size says it is all there. `stop()` (once the writer is done) ends the watch; `result` then settles,
 * after the chunks being hashed (those only queued are dropped), with the digests of each file's leading chunks
 * (by path relative to `root`) for `digestFiles` to reuse, and the bytes hashed. A file's digests stop at its
 * first chunk that was dropped or could not be read: `digestFiles` hashes the rest.
 */
export function followAppends(
  root: string,
  dir: string,
  match: (name: string) => boolean,
  opts: { concurrency: number; chunkSize?: number; intervalMs?: number },
): { stop: () => void; result: Promise<{ known: KnownChunks; bytes: number }> } {
  const chunkSize = opts.chunkSize ?? DIGEST_CHUNK;
  const pool = new HashPool(opts.concurrency);
  const files = new Map<string, { chunks: Promise<string | undefined>[]; failed: boolean }>();
  let bytes = 0;
  let stopped = false;
  const scan = async () => {
    let names: string[];
    try {
      names = (await readdir(join(root, dir))).filter(match);
    } catch {
      return; // the writer has not made the folder yet
    }
    for (const name of names) {
      const path = join(dir, name);
      const size = await stat(join(root, path)).then(
        (s) => s.size,
        () => 0,
      );
      const f = files.get(path) ?? { chunks: [], failed: false };
      files.set(path, f);
      while (!f.failed && (f.chunks.length + 1) * chunkSize <= size) {
        const offset = f.chunks.length * chunkSize;
        const hashed = pool.hash({ id: 0, path: join(root, path), offset, length: chunkSize }).then(
          (r) => {
            bytes += r.bytes;
            return r.sha256;
          },
          () => {
            f.failed = true;
            return undefined;
          },
        );
        f.chunks.push(hashed);
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await scan();
      if (!stopped) await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
    }
  })();
  const result = (async () => {
    await loop;
    // What is still queued is left to `digestFiles`, which has all the cores once the writer is done.
    pool.cancelQueued();
    const known: KnownChunks = new Map();
    try {
      for (const [path, f] of files) {
        const all = await Promise.all(f.chunks);
        const end = all.indexOf(undefined);
        const chunks = (end < 0 ? all : all.slice(0, end)) as string[];
        if (chunks.length > 0) known.set(path, { chunkSize, chunks });
      }
    } finally {
      await pool.close();
    }
    return { known, bytes };
  })();
  return { stop: () => void (stopped = true), result };
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
  opts: { events?: Events; phase?: string; concurrency?: number; chunkSize?: number; known?: KnownChunks } = {},
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
  // Leading chunks digested before (followAppends) are taken as they are, if the file still holds them whole.
  const knownOf = (f: DigestInput, size: number) => {
    const k = opts.known?.get(f.path);
    return k && k.chunkSize === chunkSize && k.chunks.length * chunkSize <= size ? k.chunks : [];
  };
  const known = inputs.map((f, i) => knownOf(f, sizes[i]!));
  inputs.forEach((f, i) => {
    const size = sizes[i]!;
    const count = Math.max(1, Math.ceil(size / chunkSize));
    for (let c = known[i]!.length; c < count; c++) {
      owners.push({ file: i, chunk: c });
      jobs.push({
        id: jobs.length,
        path: join(root, f.path),
        offset: c * chunkSize,
        length: Math.min(chunkSize, size - c * chunkSize),
      });
    }
  });
  const total = jobs.reduce((a, j) => a + j.length, 0);
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
    const chunks = [...known[i]!, ...owners.flatMap((o, id) => (o.file === i ? [hashes.get(id)!] : []))];
    return { path: f.path, role: f.role, size: sizes[i]!, chunkSize, chunks, sha256: combine(chunks) };
  });
}

/** The file digest: sha256 over the chunk digests, in order. */
export function combine(chunks: string[]): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}
