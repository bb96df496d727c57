import { dirname, join } from "node:path";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "../store/manifest.js";
import type { Snapshot } from "../store/store.js";
import { prefetch, PREFETCH_STRATEGIES, type PrefetchStrategy } from "../pagecache/prefetch.js";
import { recordVerified, stampFiles, stillVerified, type Stamp } from "../store/verified.js";
import type { PrefetchMode, VerifyMode } from "./modes.js";
import { envChoice, envInt } from "../env.js";
import { eagerRanges, readPagemaps } from "../criu/pagemap.js";
import { mergeRanges } from "./working-set.js";
export type { PrefetchMode, VerifyMode };

/** The files CRIU itself reads during a restore. */
const CRIU_READS = new Set<FileEntry["role"]>(["image", "link-remap", "shm"]);

export interface ReadStats {
  bytesRead: number;
  bytesAlreadyResident: number;
  bytesVerified: number;
}

/** Reads running beside the restore: prefetch into the page cache, digest verification, or both. */
export interface BackgroundReads {
  /** Waits for the reads; throws E_DIGEST_MISMATCH (or a read error) if they failed. */
  done(): Promise<ReadStats>;
  /** Waits for the reads and returns their error, if any (never throws). */
  failure(): Promise<StasisError | undefined>;
  cancel(): void;
}

/**
 * The order CRIU and the engine need the files in: CRIU reads its small metadata images first, then the memory
 * pages; the engine reads the weights after the CUDA restore.
 */
export function readOrder(files: FileEntry[]): FileEntry[] {
  const rank = (f: FileEntry) => {
    if (f.role === "image") return /(^|\/)pages-\d+\.img$/.test(f.path) ? 1 : 0;
    if (f.role === "link-remap" || f.role === "shm") return 0;
    if (f.role === "weights") return 2;
    return 3;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
}

/**
 * Starts the background reads for a restore. verify=full: every byte is read and checked against the
 * manifest's chunk digests (which also leaves the files in the page cache); auto: the same for every file
 * not verified earlier in this boot and unchanged since (store/verified.ts), sizes for the rest; size: sizes
 * only, up front; none. prefetch=all: every file not yet resident is read beside CRIU; images: only what CRIU
 * reads; weights: only the weights (read while CRIU reads its images, for the refill after it); none (the default: measured fastest on our GPU machine, docs/pagecache.md): only what verification
 * reads. Files that pass a digest check are stamped as verified.
 */
export function startBackgroundReads(snap: Snapshot, opts: { verify: VerifyMode; prefetch: PrefetchMode; events: Events }): BackgroundReads {
  const controller = new AbortController();
  const files = readOrder(snap.manifest.files);
  const work = (async (): Promise<ReadStats> => {
    // Sizes (and where each file leads) were checked before CRIU started: restore.ts, store/check-files.ts.
    // Stamped before any byte is read: what then passes its digests is recorded with these stamps.
    const stamps = opts.verify === "full" || opts.verify === "auto" ? await stampFiles(snap.dir, files) : new Map<string, Stamp>();
    const known = opts.verify === "auto" ? await stillVerified(snap.dir, stamps) : new Set<string>();
    const toVerify = opts.verify === "full" || opts.verify === "auto" ? files.filter((f) => !known.has(f.path)) : [];
    const prefetching = (f: FileEntry) =>
      opts.prefetch === "all" || (opts.prefetch === "images" && CRIU_READS.has(f.role)) || (opts.prefetch === "weights" && f.role === "weights");
    if (toVerify.length === 0 && !files.some(prefetching)) return { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 };
    const verifying = new Set(toVerify.map((f) => f.path));
    const phase = toVerify.length > 0 ? "prefetch+verify" : "prefetch";
    const eager = opts.prefetch === "images" || opts.prefetch === "all" ? await eagerFirst(snap, files, opts.events) : new Map<string, Range[]>();
    const stats = await opts.events.phase(
      phase,
      () =>
        prefetch(
          files
            .filter((f) => prefetching(f) || verifying.has(f.path))
            .flatMap((f) => {
              const whole = { path: join(snap.dir, f.path), expectSize: f.size };
              if (verifying.has(f.path)) return [{ ...whole, verify: { chunkSize: f.chunkSize, sha256: f.chunks } }];
              const raw = eager.get(f.path);
              if (!raw) return [whole];
              const first = mergeRanges(raw, f.size); // one larger read beats several small ones on a disk
              return [...first, ...complement(first, f.size)].map(([offset, length]) => ({ ...whole, offset, length }));
            }),
          { skipResident: true, signal: controller.signal, events: opts.events, phase, ...tuning() },
        ),
      (s) => ({
        bytes: s.bytesRead,
        detail: { bytesAlreadyResident: s.bytesAlreadyResident, bytesTotal: s.bytesTotal, filesVerified: toVerify.length, filesKnownGood: known.size },
      }),
    );
    if (toVerify.length > 0) await recordVerified(snap.dir, new Map([...stamps].filter(([path]) => verifying.has(path))));
    return {
      bytesRead: stats.bytesRead,
      bytesAlreadyResident: stats.bytesAlreadyResident,
      bytesVerified: toVerify.reduce((a, f) => a + f.size, 0),
    };
  })();
  const settled = work.then(
    () => undefined,
    (err: unknown) => (err instanceof StasisError ? err : new StasisError("E_IO", String((err as Error)?.message ?? err), { cause: err })),
  );
  return {
    done: () => work,
    failure: () => settled,
    cancel: () => controller.abort(),
  };
}

/**
 * How the restore's background reads run: whole files in 2 MiB page-cache folios (largeFolios: 4 MiB reads for the
 * disk), unless STASIS_PREFETCH_LARGE_FOLIOS=0; and knobs for measuring (see gpu/suites/restore-levers.sh):
 * STASIS_PREFETCH_CONCURRENCY (threads) and STASIS_PREFETCH_STRATEGY (populate, read, fadvise).
 */
function tuning(): { concurrency?: number; strategy?: PrefetchStrategy; largeFolios: boolean } {
  const out: { concurrency?: number; strategy?: PrefetchStrategy; largeFolios: boolean } = { largeFolios: process.env.STASIS_PREFETCH_LARGE_FOLIOS !== "0" };
  const c = envInt("STASIS_PREFETCH_CONCURRENCY", 1);
  if (c !== undefined) out.concurrency = c;
  const s = envChoice("STASIS_PREFETCH_STRATEGY", PREFETCH_STRATEGIES);
  if (s !== undefined) out.strategy = s;
  return out;
}

/** A byte range of a file: [offset, length]. */
type Range = [number, number];

/**
 * For each pages image, the ranges CRIU reads itself in a lazy restore (its pagemaps' pages not marked lazy,
 * criu/pagemap.ts), to be read before the rest of the image: from a cold page cache CRIU reads them one small pread
 * at a time, scattered over the image, and each waited for the disk behind the image's prefetch (on the development
 * machine, 31 ranges, 23 MB of a 390 MB image; CRIU's restore was most of its time in those reads). Off unless
 * STASIS_PREFETCH_EAGER_FIRST=1: on the H100 CRIU is not what a cold restore waits for (the weights are, and they
 * start once the images are read), and out of file order the images took 0.1-0.2 s longer to read, restore-cold
 * 6.55 s against 6.37 s in file order, four of each alternating (bench/results/2026-11-27-h100/pipeline-3b-38-eager-ab/).
 * Advisory: a pagemap that cannot be read leaves its image in file order.
 */
async function eagerFirst(snap: Snapshot, files: FileEntry[], events: Events): Promise<Map<string, Range[]>> {
  const out = new Map<string, Range[]>();
  if (process.env.STASIS_PREFETCH_EAGER_FIRST !== "1") return out;
  const pagemaps = files.filter((f) => f.role === "image" && /(^|\/)pagemap-\d+\.img$/.test(f.path));
  try {
    for (const { path, pagemap } of await readPagemaps(pagemaps.map((f) => join(snap.dir, f.path)))) {
      const pages = join(dirname(path), `pages-${pagemap.pagesId}.img`).slice(snap.dir.length + 1);
      const ranges = eagerRanges(pagemap); // each process's pagemap has a pages image of its own
      if (ranges.length > 0) out.set(pages, ranges);
    }
  } catch (err) {
    events.log(`reading the pagemaps failed (${(err as Error).message}); the pages images are read in file order`, "warn");
    return new Map();
  }
  return out;
}

/** The parts of [0, size) outside `ranges` (sorted, disjoint). */
export function complement(ranges: Range[], size: number): Range[] {
  const out: Range[] = [];
  let at = 0;
  for (const [offset, length] of ranges) {
    if (offset > at) out.push([at, offset - at]);
    at = Math.max(at, offset + length);
  }
  if (at < size) out.push([at, size - at]);
  return out;
}
