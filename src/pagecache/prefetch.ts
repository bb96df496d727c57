import { availableParallelism } from "node:os";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileRange } from "./_files.js";
import { planFiles } from "./_plan.js";
import { runPlan } from "./_run.js";

/**
 * How prefetch brings bytes into the page cache; each runs on `concurrency` worker threads, one chunk per job.
 * - `populate` (default, fastest cold): mmap the chunk and madvise(MADV_POPULATE_READ): the kernel reads it
 *   in and waits; nothing is copied to user space. Linux 5.14+ (falls back to `read` before that).
 * - `read`: pread() the chunk into a reused buffer (copies every byte once).
 * - `fadvise`: posix_fadvise(WILLNEED) the chunk, then wait for the kernel's readahead with mincore (as fast
 *   cold, and the cheapest for chunks that are already resident).
 * Files with `verify` are populated, then read and hashed (every byte). docs/pagecache.md has the measurements.
 */
export type PrefetchStrategy = "populate" | "read" | "fadvise";
export const PREFETCH_STRATEGIES: readonly PrefetchStrategy[] = ["populate", "read", "fadvise"];

/** A file (or byte range) to prefetch, with what the caller knows about it. */
export interface PrefetchFile extends FileRange {
  /** Refuse the file (E_FILE_CHANGED) unless it has exactly this size. */
  expectSize?: number;
  /** Refuse the file (E_FILE_CHANGED) unless its mtime is this (ms since the epoch, as fs.Stats.mtimeMs). */
  expectMtimeMs?: number;
  /**
   * Check the content while reading: sha256 hex of each `chunkSize`-byte chunk of the whole file (the last one
   * shorter; an empty file has one, of no bytes). A range is widened to whole chunks. Every byte is read,
   * resident or not; a mismatch throws E_DIGEST_MISMATCH naming the file and the chunk.
   */
  verify?: { chunkSize: number; sha256: string[] };
}

export interface PrefetchOptions {
  /** Worker threads, each with up to two jobs queued (default: cores, at least 4, at most 8). */
  concurrency?: number;
  /** Bytes per job and per read (default 8 MiB). */
  chunkBytes?: number;
  /**
   * Skip chunks already wholly in the page cache (cachestat; mincore before Linux 6.5); verified files are read
   * in full regardless.
   */
  skipResident?: boolean;
  strategy?: PrefetchStrategy;
  /**
   * populate (and verify): ask for the page cache in 2 MiB folios (MADV_HUGEPAGE on each chunk's mapping), so the
   * disk gets 4 MiB reads; each fault reads up to 2 MiB past its chunk, so for whole files and large ranges only.
   * Needs THP (`madvise` or `always`) and a filesystem with large folios (ext4 since Linux 6.16, xfs); elsewhere it
   * changes nothing.
   */
  largeFolios?: boolean;
  /** Abort: jobs in flight finish, nothing new starts, and prefetch throws E_INTERRUPTED. */
  signal?: AbortSignal;
  /** Gets `progress(phase, done, total)` in bytes as chunks land (resident bytes that were skipped count as done). */
  events?: Events;
  /** The progress events' phase name (default "prefetch"). */
  phase?: string;
}

export interface PrefetchStats {
  files: number;
  /** Bytes of the requested ranges (widened to whole chunks for verified files). */
  bytesTotal: number;
  /** Bytes the workers read or populated. With skipResident, about bytesTotal - bytesAlreadyResident. */
  bytesRead: number;
  /** Of bytesTotal, what was in the page cache when prefetch looked, before reading it. */
  bytesAlreadyResident: number;
  /** Bytes whose digests were checked. */
  bytesVerified: number;
  ms: number;
  /** bytesRead per second over `ms`, in GB/s. */
  gbps: number;
  strategy: PrefetchStrategy;
  /** Worker threads used: `concurrency`, or fewer when there was less work (0 when everything was skipped). */
  concurrency: number;
}

export const DEFAULT_CHUNK_BYTES = 8 << 20;

/**
 * Cores, at least 4 (reads wait on the disk, not the CPU) and at most 8: on the GPU machine 4 and 8 threads
 * read at the disk's full speed and 16 did no better (docs/pagecache.md).
 */
export function defaultConcurrency(): number {
  return Math.min(8, Math.max(4, availableParallelism()));
}

/**
 * Reads files, or byte ranges of them, into the page cache in parallel, in the order given: earlier files
 * first, all threads kept busy. Everything is checked before any I/O (missing files, directories, sizes and
 * mtimes against `expect*`), and again after each file is read (a file that vanished, was replaced, or
 * changed size or mtime meanwhile: E_FILE_CHANGED).
 *
 * @example
 *   const stats = await prefetch(
 *     [{ path: `${dir}/images/pages-1.img`, expectSize: 2_812_000_256 }, { path: `${dir}/weights.bin` }],
 *     { skipResident: true, events, phase: "prefetch" },
 *   );
 *   stats.bytesRead; stats.bytesAlreadyResident;
 */
export async function prefetch(files: PrefetchFile[], opts: PrefetchOptions = {}): Promise<PrefetchStats> {
  const started = performance.now();
  const concurrency = checkInt("concurrency", opts.concurrency ?? defaultConcurrency(), 1, 256);
  const chunkBytes = checkInt("chunkBytes", opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, 64 << 10, 1 << 30);
  const strategy = opts.strategy ?? "populate";
  if (!PREFETCH_STRATEGIES.includes(strategy)) {
    throw new StasisError(
      "E_USAGE",
      `prefetch strategy must be one of ${PREFETCH_STRATEGIES.join(", ")}, got "${String(strategy)}"`,
    );
  }
  if (opts.signal?.aborted) throw interrupted();
  const plans = await planFiles(files);
  const bytesTotal = plans.reduce((a, p) => a + p.length, 0);
  const totals = await runPlan(plans, {
    concurrency,
    chunkBytes,
    strategy,
    largeFolios: opts.largeFolios ?? false,
    skipResident: opts.skipResident ?? false,
    bytesTotal,
    signal: opts.signal,
    events: opts.events,
    phase: opts.phase ?? "prefetch",
    interrupted,
  });
  const ms = performance.now() - started;
  return {
    files: plans.length,
    bytesTotal,
    ...totals,
    ms,
    gbps: ms > 0 ? totals.bytesRead / 1e9 / (ms / 1000) : 0,
    strategy,
  };
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new StasisError("E_USAGE", `prefetch ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function interrupted(): StasisError {
  return new StasisError("E_INTERRUPTED", "prefetch was interrupted", {
    hint: "run it again; what was read stays in the page cache",
  });
}
