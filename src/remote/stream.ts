import { open, mkdir, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry, Manifest } from "../store/manifest.js";
import { PRIVATE_DIR, PRIVATE_FILE } from "../store/private.js";
import type { Snapshot, Staging } from "../store/store.js";
import { recordVerified, stampFiles } from "../store/verified.js";
import type { ChunkCache } from "./cache.js";
import type { Remote } from "./client.js";
import { fetchChunk, noCounts, type FetchCounts } from "./_fetch.js";
import { eachLimit } from "./_pool.js";
import { distinctChunks, type ChunkRef } from "./push.js";
import type { RemoteStore } from "./url.js";

export interface StreamContext {
  remote: Remote;
  src: RemoteStore;
  cache: ChunkCache;
  /** Chunks in flight at once. */
  concurrency: number;
  /** Ranged GETs of this size for a larger chunk (0: one GET each). */
  partSize: number;
}

/** What a restore reads first: CRIU's images and the files it places (metadata, then memory pages), then weights. */
export function needRank(f: Pick<FileEntry, "role" | "path">): number {
  if (f.role === "image") return /(^|\/)pages-\d+\.img$/.test(f.path) ? 1 : 0;
  if (f.role === "link-remap" || f.role === "shm") return 0;
  if (f.role === "weights") return 2;
  return 3;
}

/** The files CRIU reads (the rest, weights and the engine's other files, are read after it or beside it). */
export const forCriu = (f: Pick<FileEntry, "role" | "path">): boolean => needRank(f) <= 1;

/**
 * A snapshot's chunks being fetched into a staging folder in the order a restore needs them (`needRank`): the
 * folder is a snapshot a restore can run from as its files land, each file's `whole` promise resolving once every
 * chunk of it is written (each checked against its sha256 first). `finish` syncs the files and renames the folder
 * into the store; `abort` stops the transfers and removes it. Chunks fetched stay in the node's cache either way.
 */
export class PullStream {
  readonly done: Promise<void>;
  private readonly files = new Map<string, { left: number; whole: Deferred }>();
  private readonly stopped = new AbortController();
  private failed: unknown;
  readonly counts: FetchCounts = noCounts();
  /** When (the events' clock, ms) the transfer started, the files CRIU reads were whole, and every file. */
  readonly wholeAt: { transferStartMs: number; criuFilesMs?: number; allFilesMs?: number };

  constructor(
    readonly snapshot: Snapshot,
    private readonly staging: Staging,
    private readonly handles: Map<string, FileHandle>,
    private readonly ctx: StreamContext,
    private readonly events: Events,
  ) {
    const chunks = [...distinctChunks(snapshot.manifest).values()];
    for (const refs of chunks) {
      for (const ref of refs) {
        const f = this.files.get(ref.path) ?? { left: 0, whole: deferred() };
        f.left++;
        this.files.set(ref.path, f);
      }
    }
    // In need order, file by file (each file whole as soon as it can be), each front to back.
    const files = snapshot.manifest.files;
    const rank = new Map(files.map((f, i) => [f.path, needRank(f) * files.length + i]));
    const first = (refs: ChunkRef[]) => Math.min(...refs.map((r) => rank.get(r.path)!));
    chunks.sort((a, b) => first(a) - first(b) || a[0]!.offset - b[0]!.offset);
    this.wholeAt = { transferStartMs: events.t() };
    this.done = this.run(chunks, snapshot.manifest);
    void this.whole(forCriu).then(
      () => (this.wholeAt.criuFilesMs = events.t()),
      () => undefined,
    );
    void this.whole().then(
      () => (this.wholeAt.allFilesMs = events.t()),
      () => undefined,
    );
    this.done.catch(() => undefined); // its failure reaches the caller through `whole` and `finish`
  }

  /** Resolves once every file that `which` picks is written whole; rejects with the transfer's failure. */
  whole(which: (f: FileEntry) => boolean = () => true): Promise<void> {
    const waits = this.snapshot.manifest.files.filter(which).map((f) => this.files.get(f.path)!.whole.promise);
    return Promise.all(waits).then(() => undefined);
  }

  /** The transfer's failure once it has failed (undefined while it runs or after it succeeded). */
  failure(): unknown {
    return this.failed;
  }

  /** Waits for every chunk, syncs the files and moves the folder into the store, stamped as verified. */
  async finish(): Promise<string> {
    await this.done;
    for (const fh of this.handles.values()) await fh.sync();
    const stamps = await stampFiles(this.staging.dir, this.snapshot.manifest.files);
    await this.closeFiles();
    const dir = await this.staging.commit(this.snapshot.manifest);
    // Every byte written was checked against its digest: the first restore need not hash the files again
    // (as after a capture; a file changed since loses its stamp).
    await recordVerified(dir, stamps);
    await this.ctx.cache.trim().catch(() => undefined);
    return dir;
  }

  /** Starts no more transfers: the waits fail (E_INTERRUPTED) once those running have settled. */
  stop(): void {
    this.stopped.abort();
  }

  /** Stops the transfers, waits for those running and removes the folder (no half snapshot). */
  async abort(): Promise<void> {
    this.stop();
    await this.done.catch(() => undefined);
    await this.closeFiles();
    await this.staging.abort();
    await this.ctx.cache.trim().catch(() => undefined);
  }

  private async closeFiles() {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
    this.handles.clear();
  }

  private async run(chunks: ChunkRef[][], m: Manifest): Promise<void> {
    const bytes = m.files.reduce((a, f) => a + f.size, 0);
    let written = 0;
    try {
      await this.events.phase(
        "pull-chunks",
        () =>
          eachLimit(chunks, this.ctx.concurrency, async (refs) => {
            if (this.stopped.signal.aborted) throw new StasisError("E_INTERRUPTED", "the pull was stopped");
            const { buf, fresh } = await fetchChunk(refs[0]!, { ...this.ctx, counts: this.counts });
            for (const ref of refs) {
              await this.write(ref, buf);
              written += ref.length;
              const f = this.files.get(ref.path)!;
              if (--f.left === 0) f.whole.resolve();
            }
            this.events.progress("pull-chunks", written, bytes);
            if (fresh) await this.ctx.cache.put(refs[0]!.digest, buf); // after the files: no reader waits on it
          }),
        () => ({ bytes: this.counts.bytesFetched, detail: { ...this.counts } }),
      );
    } catch (err) {
      this.failed = err;
      for (const f of this.files.values()) f.whole.reject(err);
      throw err;
    }
  }

  private async write(ref: ChunkRef, buf: Buffer) {
    const { bytesWritten } = await this.handles
      .get(ref.path)!
      .write(buf, 0, ref.length, ref.offset)
      .catch((err) => {
        throw fsError(err, join(this.staging.dir, ref.path), "write pulled file");
      });
    if (bytesWritten !== ref.length) throw new StasisError("E_IO", `short write to ${ref.path} of the pulled snapshot`);
  }
}

/** Creates the snapshot's files in the staging folder at their sizes (root's alone), open for writing. */
export async function createFiles(dir: string, files: FileEntry[]): Promise<Map<string, FileHandle>> {
  const handles = new Map<string, FileHandle>();
  try {
    for (const f of files) {
      const path = join(dir, f.path);
      await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR });
      const fh = await open(path, "wx", PRIVATE_FILE).catch((err) => {
        throw fsError(err, path, "create pulled file");
      });
      handles.set(f.path, fh);
      await fh.truncate(f.size);
    }
    return handles;
  } catch (err) {
    for (const fh of handles.values()) await fh.close().catch(() => undefined);
    throw err;
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // a file nobody waits on fails with the transfer, which is reported once
  return { promise, resolve, reject };
}
