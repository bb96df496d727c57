import { join } from "node:path";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "../store/manifest.js";
import type { Snapshot } from "../store/store.js";
import { prefetch } from "../pagecache/prefetch.js";
import { recordVerified, stampFiles, stillVerified, type Stamp } from "../store/verified.js";
import type { PrefetchMode, VerifyMode } from "./modes.js";
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
 * reads; weights: only the weights (read while CRIU reads its images, for the refill after it); none: only what
 * verification reads (the default, auto: modes.ts). Files that pass a digest check are stamped as verified.
 */
export function startBackgroundReads(
  snap: Snapshot,
  opts: { verify: VerifyMode; prefetch: PrefetchMode; events: Events },
): BackgroundReads {
  const controller = new AbortController();
  const files = readOrder(snap.manifest.files);
  const work = (async (): Promise<ReadStats> => {
    // Sizes (and where each file leads) were checked before CRIU started: restore.ts, store/check-files.ts.
    // Stamped before any byte is read: what then passes its digests is recorded with these stamps.
    const stamps =
      opts.verify === "full" || opts.verify === "auto" ? await stampFiles(snap.dir, files) : new Map<string, Stamp>();
    const known = opts.verify === "auto" ? await stillVerified(snap.dir, stamps) : new Set<string>();
    const toVerify = opts.verify === "full" || opts.verify === "auto" ? files.filter((f) => !known.has(f.path)) : [];
    const prefetching = (f: FileEntry) =>
      opts.prefetch === "all" ||
      (opts.prefetch === "images" && CRIU_READS.has(f.role)) ||
      (opts.prefetch === "weights" && f.role === "weights");
    if (toVerify.length === 0 && !files.some(prefetching))
      return { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 };
    const verifying = new Set(toVerify.map((f) => f.path));
    const phase = toVerify.length > 0 ? "prefetch+verify" : "prefetch";
    const stats = await opts.events.phase(
      phase,
      () =>
        prefetch(
          files
            .filter((f) => prefetching(f) || verifying.has(f.path))
            .map((f) => {
              const whole = { path: join(snap.dir, f.path), expectSize: f.size };
              return verifying.has(f.path) ? { ...whole, verify: { chunkSize: f.chunkSize, sha256: f.chunks } } : whole;
            }),
          // Why: docs/decisions/0005-image-prefetch.md (whole files, in file order, 2 MiB page-cache folios).
          { skipResident: true, signal: controller.signal, events: opts.events, phase, largeFolios: true },
        ),
      (s) => ({
        bytes: s.bytesRead,
        detail: {
          bytesAlreadyResident: s.bytesAlreadyResident,
          bytesTotal: s.bytesTotal,
          filesVerified: toVerify.length,
          filesKnownGood: known.size,
        },
      }),
    );
    if (toVerify.length > 0)
      await recordVerified(snap.dir, new Map([...stamps].filter(([path]) => verifying.has(path))));
    return {
      bytesRead: stats.bytesRead,
      bytesAlreadyResident: stats.bytesAlreadyResident,
      bytesVerified: toVerify.reduce((a, f) => a + f.size, 0),
    };
  })();
  const settled = work.then(
    () => undefined,
    (err: unknown) =>
      err instanceof StasisError
        ? err
        : new StasisError("E_IO", String((err as Error)?.message ?? err), { cause: err }),
  );
  return {
    done: () => work,
    failure: () => settled,
    cancel: () => controller.abort(),
  };
}
