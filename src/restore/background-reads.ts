import { join } from "node:path";
import { stat } from "node:fs/promises";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "../store/manifest.js";
import type { Snapshot } from "../store/store.js";
import { prefetch } from "../pagecache/prefetch.js";

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
 * Starts the background reads for a restore. With verify=full every byte is read and checked against the
 * manifest's chunk digests (which also leaves the files in the page cache); with verify=size only sizes are
 * checked, up front; with prefetch, files not yet resident are read ahead of CRIU.
 */
export function startBackgroundReads(snap: Snapshot, opts: { verify: "full" | "size" | "none"; prefetch: boolean; events: Events }): BackgroundReads {
  const controller = new AbortController();
  const files = readOrder(snap.manifest.files);
  const work = (async (): Promise<ReadStats> => {
    if (opts.verify !== "none") await checkSizes(snap.dir, files);
    if (opts.verify !== "full" && !opts.prefetch) return { bytesRead: 0, bytesAlreadyResident: 0, bytesVerified: 0 };
    const phase = opts.verify === "full" ? "prefetch+verify" : "prefetch";
    const stats = await opts.events.phase(
      phase,
      () =>
        prefetch(
          files.map((f) => ({
            path: join(snap.dir, f.path),
            expectSize: f.size,
            ...(opts.verify === "full" ? { verify: { chunkSize: f.chunkSize, sha256: f.chunks } } : {}),
          })),
          { skipResident: opts.verify !== "full", signal: controller.signal, events: opts.events, phase },
        ),
      (s) => ({ bytes: s.bytesRead, detail: { bytesAlreadyResident: s.bytesAlreadyResident, bytesTotal: s.bytesTotal } }),
    );
    return {
      bytesRead: stats.bytesRead,
      bytesAlreadyResident: stats.bytesAlreadyResident,
      bytesVerified: opts.verify === "full" ? stats.bytesTotal : 0,
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

async function checkSizes(dir: string, files: FileEntry[]): Promise<void> {
  for (const f of files) {
    const size = await stat(join(dir, f.path)).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== f.size) {
      throw new StasisError(
        "E_DIGEST_MISMATCH",
        size < 0 ? `snapshot file ${f.path} is missing` : `snapshot file ${f.path} has ${size} bytes, the manifest says ${f.size}`,
        { hint: "the snapshot was changed after capture; capture it again", details: { path: f.path } },
      );
    }
  }
}
