// Worker thread of the prefetch pool (see _pool.ts): brings one byte range of an open file into the page
// cache per message, the way the job says, and answers with what it did. Never throws: errors are answers.
import { parentPort, workerData } from "node:worker_threads";
import { fstatSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { StasisError } from "../errors.js";
import { FADV, MADV, errnoOf, fadvise, madvise, mincore, pageSize, withMapping } from "../native/libc.js";
import type { Job, JobDone } from "./_pool.js";

const { ioBytes } = workerData as { ioBytes: number };
const buffer = Buffer.allocUnsafe(ioBytes);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** posix_fadvise(WILLNEED) reads at most the readahead window per call; 2 MiB stays inside any usual window. */
const ADVISE_PIECE = 2 << 20;
/** fadvise: give up waiting for the kernel's readahead after this long without progress, and read instead. */
const STALL_MS = 1000;
let populateWorks = true;

/** pread()s the range through the reused buffer; returns the bytes read (fewer at EOF). */
function readRange(fd: number, offset: number, length: number, onData?: (b: Buffer) => void): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, length - done), offset + done);
    if (n === 0) break;
    onData?.(buffer.subarray(0, n));
    done += n;
  }
  return done;
}

/**
 * Reads and hashes the range. The pages are brought in first the way `populate` does (the fastest cold path
 * measured), so the reads that feed the hash copy from memory; a failure there is left to the reads to find.
 */
function verify(job: Job): JobDone {
  if (populateWorks && job.length > 0) {
    try {
      populate(job);
    } catch {
      /* the reads below meet (and report) whatever went wrong */
    }
  }
  const chunk = job.hashChunk!;
  const digests: string[] = [];
  let bytes = 0;
  for (let at = job.offset; at < job.offset + job.length || digests.length === 0; at += chunk) {
    const want = Math.min(chunk, job.offset + job.length - at);
    const hash = createHash("sha256");
    const got = readRange(job.fd, at, want, (b) => hash.update(b));
    bytes += got;
    if (got < want) return { id: job.id, bytes, eof: true };
    digests.push(hash.digest("hex"));
  }
  return { id: job.id, bytes, digests };
}

/**
 * mmap + madvise(MADV_POPULATE_READ): the kernel reads the range in and waits for it; nothing is copied to us.
 * With `largeFolios`, MADV_HUGEPAGE first (best effort): each fault then reads two 2 MiB folios, so the disk gets
 * 4 MiB reads instead of requests of scattered 4 KiB pages (docs/pagecache.md, "Large folios").
 */
function populate(job: Job): JobDone {
  const ps = pageSize();
  const start = Math.floor(job.offset / ps) * ps;
  try {
    withMapping(job.fd, start, job.offset + job.length - start, job.path, (m) => {
      if (job.largeFolios) {
        try {
          madvise(m, MADV.HUGEPAGE);
        } catch {
          /* no THP for this mapping: 4 KiB pages, as without it */
        }
      }
      madvise(m, MADV.POPULATE_READ);
    });
    return { id: job.id, bytes: job.length };
  } catch (err) {
    if (errnoOf(err) === "EFAULT") return { id: job.id, bytes: 0, eof: true }; // pages past a new EOF
    if (errnoOf(err) !== "EINVAL") throw err;
    populateWorks = false; // kernel older than 5.14: no MADV_POPULATE_READ
    return { ...read(job), fellBack: "populate needs Linux 5.14+ (MADV_POPULATE_READ); read instead" };
  }
}

/**
 * posix_fadvise(WILLNEED) the range, then wait (mincore, 1 ms polls) until the kernel's readahead has brought
 * it all in. Pages can be reclaimed before they arrive; if nothing moves for STALL_MS, read what is left.
 */
function advise(job: Job): JobDone {
  if (fstatSync(job.fd).size < job.offset + job.length) return { id: job.id, bytes: 0, eof: true };
  for (let at = job.offset; at < job.offset + job.length; at += ADVISE_PIECE) {
    fadvise(job.fd, at, Math.min(ADVISE_PIECE, job.offset + job.length - at), FADV.WILLNEED, job.path);
  }
  const ps = pageSize();
  const start = Math.floor(job.offset / ps) * ps;
  const length = job.offset + job.length - start;
  const vec = new Uint8Array(Math.ceil(length / ps));
  const complete = withMapping(job.fd, start, length, job.path, (m) => {
    let best = -1;
    let since = performance.now();
    for (;;) {
      mincore(m, vec);
      let resident = 0;
      for (const v of vec) resident += v & 1;
      if (resident === vec.length) return true;
      if (resident > best) [best, since] = [resident, performance.now()];
      else if (performance.now() - since > STALL_MS) return false;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  });
  return complete ? { id: job.id, bytes: job.length } : read(job);
}

function read(job: Job): JobDone {
  const bytes = readRange(job.fd, job.offset, job.length);
  return bytes < job.length ? { id: job.id, bytes, eof: true } : { id: job.id, bytes };
}

function runJob(job: Job): JobDone {
  switch (job.mode) {
    case "verify":
      return verify(job);
    case "populate":
      return populateWorks ? populate(job) : read(job);
    case "fadvise":
      return advise(job);
    default:
      return read(job);
  }
}

parentPort!.on("message", (job: Job) => {
  let answer: JobDone;
  try {
    answer = runJob(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    answer =
      err instanceof StasisError
        ? { id: job.id, bytes: 0, error: { message: err.message, code: err.code, errno: errnoOf(err) } }
        : { id: job.id, bytes: 0, error: { message: e.message, errno: e.code } };
  }
  parentPort!.postMessage(answer);
});
