import type { Config } from "../config/config.js";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import {
  prefetch as prefetchFiles,
  type PrefetchFile,
  type PrefetchStats,
  type PrefetchStrategy,
} from "../pagecache/prefetch.js";
import { resolveTargets } from "../pagecache/targets.js";
import { pinDaemonWeights, type DaemonPin } from "../serve/client.js";
import { startWorkingSet } from "../restore/working-set.js";
import { criuInstallPaths, locateCriu } from "../criu/locate.js";
import { exists } from "../files.js";
import { paths } from "../home.js";

export interface PrefetchOptions {
  /** Files or directories; with `snapshot`, paths inside it (all of its files when empty). */
  paths: string[];
  snapshot?: string;
  concurrency?: number;
  chunkBytes?: number;
  strategy?: PrefetchStrategy;
  skipResident?: boolean;
  /** Check every chunk against the snapshot's digests while reading (needs `snapshot`). */
  verify?: boolean;
  /** The page cache in 2 MiB folios (see pagecache/prefetch.ts). */
  largeFolios?: boolean;
  signal?: AbortSignal;
  /** The CRIU whose files a whole snapshot's prefetch reads too (`Config.criu`). */
  config: Pick<Config, "criu">;
}

export interface PrefetchResult extends PrefetchStats {
  snapshot?: string;
  paths: string[];
  /** A whole snapshot's prefetch where `stasis serve` runs: its weights pinned by the daemon, or why not. */
  daemonPin?: DaemonPin;
}

/**
 * Reads files, directories or a snapshot into the page cache, in parallel, as the `prefetch` phase. A whole
 * snapshot: then also its working set (phase `working-set`: the pages of the engine's own files, outside the
 * snapshot, that its last restore touched, restore/working-set.ts), and its weights pinned by `stasis serve
 * --pin-weights` where it runs (phase `pin-weights`), and CRIU itself (phase `criu-files`): everything a restore of
 * it reads is then in memory.
 */
export async function prefetch(opts: PrefetchOptions, events: Events): Promise<PrefetchResult> {
  if (opts.verify && opts.snapshot === undefined) {
    throw new StasisError("E_USAGE", "--verify needs --snapshot NAME: only a snapshot has digests to check against");
  }
  const targets = await resolveTargets({ paths: opts.paths, snapshot: opts.snapshot }, "prefetch");
  const files: PrefetchFile[] = targets.files.map((f) => ({
    path: f.path,
    ...(f.size !== undefined ? { expectSize: f.size } : {}),
    ...(opts.verify && f.chunkSize !== undefined && f.sha256Chunks
      ? { verify: { chunkSize: f.chunkSize, sha256: f.sha256Chunks } }
      : {}),
  }));
  const stats = await events.phase(
    "prefetch",
    () =>
      prefetchFiles(files, {
        concurrency: opts.concurrency,
        chunkBytes: opts.chunkBytes,
        strategy: opts.strategy,
        skipResident: opts.skipResident,
        largeFolios: opts.largeFolios,
        signal: opts.signal,
        events,
        phase: "prefetch",
      }),
    (s) => ({ bytes: s.bytesRead, detail: { bytesAlreadyResident: s.bytesAlreadyResident, bytesTotal: s.bytesTotal } }),
  );
  const whole = targets.snapshot !== undefined && opts.paths.length === 0;
  if (whole) {
    await startWorkingSet(targets.snapshot!.dir, events, opts.signal);
    await readCriu(opts.config.criu, events, opts.signal);
  }
  // Only where a daemon's socket is there: without one there is nobody to ask, and no phase to show.
  const daemonPin =
    whole && (await exists(paths.daemonSocket()))
      ? await events.phase(
          "pin-weights",
          () => pinDaemonWeights(targets.snapshot!.name),
          (p) => (p && "pinned" in p ? { bytes: p.pinned.bytes } : {}),
        )
      : undefined;
  return {
    ...stats,
    ...(targets.snapshot ? { snapshot: targets.snapshot.name } : {}),
    paths: files.map((f) => f.path),
    ...(daemonPin ? { daemonPin } : {}),
  };
}

/** CRIU's own files into the page cache (best effort: a restore without them reads them itself). */
async function readCriu(chosen: string | undefined, events: Events, signal?: AbortSignal): Promise<void> {
  try {
    const criu = await locateCriu(chosen);
    const { files } = await resolveTargets({ paths: criuInstallPaths(criu) }, "prefetch");
    await events.phase(
      "criu-files",
      () =>
        prefetchFiles(
          files.map((f) => ({ path: f.path })),
          { skipResident: true, ...(signal ? { signal } : {}) },
        ),
      (st) => ({ bytes: st.bytesRead }),
    );
  } catch (err) {
    if (!signal?.aborted)
      events.log(`CRIU's files were not read ahead (${(err as Error).message}); a restore reads them itself`, "warn");
  }
}
