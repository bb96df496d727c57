/**
 * The choices a restore offers, without the code behind them (the CLI parses them before loading any of it).
 * verify: how the snapshot's bytes are checked; prefetch: what is read into the page cache ahead of CRIU.
 * See restore/background-reads.ts.
 */
export const VERIFY_MODES = ["auto", "full", "size", "none"] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

export const PREFETCH_MODES = ["auto", "all", "images", "weights", "none"] as const;
export type PrefetchMode = (typeof PREFETCH_MODES)[number];
/**
 * What a restore reads beside CRIU unless told otherwise: auto = the images when they are not in the page cache
 * (read at the disk's parallel rate, and CRIU's memory then copied in parallel from the page cache), else
 * nothing. The weights are never prefetched by default: the stager (or the refill) reads them itself.
 * Why: docs/decisions/0005-image-prefetch.md.
 */
export const DEFAULT_PREFETCH: PrefetchMode = "auto";

/** The prefetch a restore runs: auto resolved by whether the snapshot's images are in the page cache. */
export function resolvePrefetch(mode: PrefetchMode, imagesResident: boolean): Exclude<PrefetchMode, "auto"> {
  if (mode !== "auto") return mode;
  return imagesResident ? "none" : "images";
}

/**
 * How CRIU brings back the tree's anonymous memory. copy: CRIU's own way, one thread per process copying
 * the pages while it restores; parallel: CRIU restores without copying, then worker processes of the
 * `criu lazy-pages` daemon copy every page in before the tree resumes (needs the "lazy-prefill" patch of
 * the CRIU that set-up builds); lazy: pages come on first touch through `criu lazy-pages` (userfaultfd);
 * auto: parallel where the CRIU has the patch and the images are in the page cache, else copy (why: see
 * criuMemory in restore/preflight.ts).
 */
export const MEMORY_MODES = ["auto", "copy", "parallel", "lazy"] as const;
export type MemoryMode = (typeof MEMORY_MODES)[number];
export const DEFAULT_MEMORY: MemoryMode = "auto";

/**
 * How the weights come back after a level-2 sleep. auto: where the engine can adopt them (the reference engine),
 * a stager fills fresh GPU memory with them while CRIU and the CUDA driver restore the engine, and the engine
 * maps it at its weights' addresses (engines/weights-stager.ts); else, or when staging fails, refill: the
 * engine wakes its weights' memory and refills it in place from the weights file after the CUDA restore.
 */
export const WEIGHTS_MODES = ["auto", "refill"] as const;
export type WeightsMode = (typeof WEIGHTS_MODES)[number];
export const DEFAULT_WEIGHTS: WeightsMode = "auto";
