import { Worker } from "node:worker_threads";
import { StasisError, type ErrorCode } from "../errors.js";

/** How a job brings its range into the page cache (see prefetch.ts for what each costs). */
export type JobMode = "read" | "populate" | "fadvise" | "verify";

/** One byte range of a file the main thread has open. fds are per process, so every thread can use it. */
export interface Job {
  id: number;
  fd: number;
  path: string;
  offset: number;
  length: number;
  mode: JobMode;
  /** verify: the digest chunk size; the range starts on a chunk boundary and ends on one or at EOF. */
  hashChunk?: number;
  /** populate (and verify's populate): read in 2 MiB page-cache folios (PrefetchOptions.largeFolios). */
  largeFolios?: boolean;
}

export interface JobDone {
  id: number;
  /** Bytes brought in (read, populated or seen resident). */
  bytes: number;
  /** The file ended before the range did: it shrank while we read it. */
  eof?: boolean;
  /** verify: sha256 hex of each digest chunk of the range. */
  digests?: string[];
  /** The strategy could not be used here (populate on a kernel older than 5.14) and the job read instead. */
  fellBack?: string;
  error?: { message: string; code?: ErrorCode; errno?: string };
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (d: JobDone) => void; reject: (e: unknown) => void }>;
}

/**
 * A fixed set of worker threads that run jobs. Each job goes to the thread with the fewest queued, so jobs
 * submitted in order start in about that order. The pool lives for one prefetch: `close` terminates every
 * thread (a live worker would keep the process from exiting).
 */
export class ReaderPool {
  private readonly slots: Slot[];
  private nextId = 0;

  constructor(size: number, ioBytes: number) {
    this.slots = Array.from({ length: size }, () => {
      const worker = new Worker(new URL("./_worker.js", import.meta.url), { workerData: { ioBytes } });
      const slot: Slot = { worker, pending: new Map() };
      worker.on("message", (d: JobDone) => {
        const p = slot.pending.get(d.id);
        slot.pending.delete(d.id);
        p?.resolve(d);
      });
      const failAll = (err: unknown) => {
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
      };
      worker.on("error", (err) =>
        failAll(
          new StasisError("E_INTERNAL", `prefetch worker failed: ${err.message}`, {
            cause: err,
            hint: "this is a bug in stasis; please report it",
          }),
        ),
      );
      worker.on("exit", (code) =>
        failAll(new StasisError("E_INTERNAL", `prefetch worker exited (status ${code}) with jobs pending`)),
      );
      return slot;
    });
  }

  get size(): number {
    return this.slots.length;
  }

  run(job: Omit<Job, "id">): Promise<JobDone> {
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id } satisfies Job);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
