import type { Stats } from "node:fs";
import { stat, type FileHandle } from "node:fs/promises";
import { StasisError, asStasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import { FADV, fadvise } from "../native/libc.js";
import { openRegular, residentIn } from "./_files.js";
import { changed, jobRanges, type Plan } from "./_plan.js";
import { ReaderPool, type JobDone } from "./_pool.js";
import type { PrefetchStrategy } from "./prefetch.js";

export interface RunOptions {
  concurrency: number;
  chunkBytes: number;
  strategy: PrefetchStrategy;
  largeFolios?: boolean;
  skipResident: boolean;
  bytesTotal: number;
  signal: AbortSignal | undefined;
  events: Events | undefined;
  phase: string;
  interrupted: () => StasisError;
}

export interface RunTotals {
  bytesRead: number;
  bytesAlreadyResident: number;
  bytesVerified: number;
  /** Worker threads used (fewer than asked when there is less work than threads; 0 when all was skipped). */
  concurrency: number;
}

interface OpenFile {
  plan: Plan;
  fh: FileHandle;
  /** Jobs not yet landed; the file is checked and closed when this reaches 0. */
  remaining: number;
}

interface Work {
  file: OpenFile;
  offset: number;
  length: number;
}

/**
 * Runs the jobs of `plans` on a worker pool, file by file in order: a file's jobs are queued only when the
 * previous file's jobs are all queued, so earlier files finish first while every thread stays busy. The first
 * failure stops new jobs; the ones in flight are awaited.
 */
export async function runPlan(plans: Plan[], o: RunOptions): Promise<RunTotals> {
  const totals = { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 };
  if (plans.length === 0) return { ...totals, concurrency: 0 };
  const threads = Math.max(1, Math.min(o.concurrency, Math.ceil(o.bytesTotal / o.chunkBytes)));
  // Started on the first job: when everything is resident and skipped, no thread is started at all.
  let pool: ReaderPool | undefined;
  const open = new Set<OpenFile>();
  const inflight = new Set<Promise<void>>();
  const finishing = new Set<Promise<void>>();
  let failure: StasisError | undefined;
  const fail = (err: unknown) => {
    failure ??= asStasisError(err);
  };
  const onAbort = () => fail(o.interrupted());
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let done = 0;
  const progress = (n: number) => {
    done += n;
    o.events?.progress(o.phase, done, o.bytesTotal);
  };
  let warned = false;
  let hinted = 0;

  const finish = async (f: OpenFile): Promise<void> => {
    open.delete(f);
    try {
      await checkUnchanged(f.plan.path, f.plan.st);
    } finally {
      await f.fh.close();
    }
  };
  const landed = (w: Work, d: JobDone): void => {
    const plan = w.file.plan;
    if (d.error) throw jobError(plan.path, d.error);
    if (d.fellBack && !warned) {
      warned = true;
      o.events?.log(d.fellBack, "warn");
    }
    if (d.eof) throw changed(plan.path, `shrank while it was being read (at byte ${w.offset})`, { offset: w.offset });
    if (plan.verify) {
      checkDigests(plan, w.offset, d.digests ?? []);
      totals.bytesVerified += w.length;
    }
    totals.bytesRead += d.bytes;
    progress(w.length);
    if (--w.file.remaining === 0) finishing.add(finish(w.file).catch(fail));
  };

  // A file is opened and its residency taken (cachestat, microseconds per chunk) only when its turn comes,
  // before any of its jobs run: our own reads pull in readahead, but never into another file, so
  // bytesAlreadyResident counts only what was there before us.
  async function* work(): AsyncGenerator<Work> {
    for (const plan of plans) {
      if (failure) return;
      const { fh, st } = await openRegular(plan.path, "prefetch");
      const file: OpenFile = { plan, fh, remaining: 0 };
      open.add(file);
      if (st.ino !== plan.st.ino || st.size !== plan.st.size || st.mtimeMs !== plan.st.mtimeMs) {
        throw changed(plan.path, "changed between its check and its read");
      }
      const ranges = jobRanges(plan, o.chunkBytes).filter((r) => {
        const resident = residentIn(fh.fd, r.offset, r.length, plan.path).residentBytes;
        totals.bytesAlreadyResident += resident;
        const skip = o.skipResident && !plan.verify && r.length > 0 && resident === r.length;
        if (skip) progress(r.length); // what we skip is done already
        return !skip;
      });
      file.remaining = ranges.length;
      if (ranges.length === 0) finishing.add(finish(file).catch(fail));
      for (const r of ranges) yield { file, ...r };
    }
  }

  o.events?.progress(o.phase, 0, o.bytesTotal);
  try {
    for await (const w of work()) {
      while (inflight.size >= threads * 2 && !failure) await Promise.race(inflight);
      if (failure) break;
      const plan = w.file.plan;
      // The first round of jobs waits for the threads to start (tens of ms): ask the kernel to start reading
      // them now. WILLNEED only queues the reads (and costs nothing for resident pages).
      if (hinted < threads * 2 && w.length > 0) {
        hinted++;
        fadvise(w.file.fh.fd, w.offset, w.length, FADV.WILLNEED, plan.path);
      }
      pool ??= new ReaderPool(threads, o.chunkBytes);
      const p: Promise<void> = pool
        .run({
          fd: w.file.fh.fd,
          path: plan.path,
          offset: w.offset,
          length: w.length,
          mode: plan.verify ? "verify" : o.strategy,
          ...(plan.verify ? { hashChunk: plan.verify.chunkSize } : {}),
          ...(o.largeFolios ? { largeFolios: true } : {}),
        })
        .then((d) => landed(w, d))
        .catch(fail)
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
  } catch (err) {
    fail(err);
  } finally {
    // Invariant: no job is still running on an fd when it is closed, and no worker thread outlives this call.
    await Promise.all(inflight);
    await Promise.all(finishing);
    await Promise.all([...open].map((f) => f.fh.close().catch(() => undefined)));
    await pool?.close();
    o.signal?.removeEventListener("abort", onAbort);
  }
  if (failure) throw failure;
  return { ...totals, concurrency: pool ? threads : 0 };
}

/** After a file's last job: it must still be the same file, with the same size and mtime. */
async function checkUnchanged(path: string, was: Stats): Promise<void> {
  let now: Stats;
  try {
    now = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw changed(path, "vanished while it was being read");
    throw fsError(err, path, "prefetch");
  }
  if (now.ino !== was.ino || now.dev !== was.dev)
    throw changed(path, "was replaced by another file while it was being read");
  if (now.size !== was.size)
    throw changed(path, `changed size while it was being read (${was.size} -> ${now.size} bytes)`, { size: now.size });
  if (now.mtimeMs !== was.mtimeMs) throw changed(path, "was modified while it was being read");
}

function checkDigests(plan: Plan, offset: number, digests: string[]): void {
  const { chunkSize, sha256 } = plan.verify!;
  const first = offset / chunkSize;
  digests.forEach((got, k) => {
    const chunk = first + k;
    if (got === sha256[chunk]) return;
    const start = chunk * chunkSize;
    const end = Math.min(plan.st.size, start + chunkSize);
    throw new StasisError(
      "E_DIGEST_MISMATCH",
      `${plan.path}: chunk ${chunk} (bytes ${start}..${end}) does not match its sha256`,
      {
        hint: "the file was modified or damaged after its digests were taken; if it belongs to a snapshot, capture it again",
        details: { path: plan.path, chunk, offset: start, length: end - start, expected: sha256[chunk], got },
      },
    );
  });
}

function jobError(path: string, e: NonNullable<JobDone["error"]>): StasisError {
  if (e.errno) return fsError(Object.assign(new Error(e.message), { code: e.errno }), path, "prefetch");
  return new StasisError(e.code ?? "E_IO", e.message, { details: { path } });
}
