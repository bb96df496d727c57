/**
 * The choices a restore offers, without the code behind them (the CLI parses them before loading any of it).
 * verify: how the snapshot's bytes are checked; prefetch: what is read into the page cache ahead of CRIU.
 * See restore/background-reads.ts.
 */
export const VERIFY_MODES = ["auto", "full", "size", "none"] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

export const PREFETCH_MODES = ["all", "images", "weights", "none"] as const;
export type PrefetchMode = (typeof PREFETCH_MODES)[number];
/**
 * What a restore reads beside CRIU unless told otherwise: nothing. Measured on the H100 with the page cache dropped
 * (bench/results/2026-11-27-h100/restore-levers-weights.md): reading the weights beside CRIU slows CRIU about as
 * much as it saves the refill (6.1-7.3 s vs 5.9-7.2 s to ready over two interleaved runs, differences within the
 * noise); reading the images too (all, images) was slower (bench/results/2026-11-26-h100/restore-levers).
 */
export const DEFAULT_PREFETCH: PrefetchMode = "none";

/**
 * How CRIU brings back the tree's anonymous memory. copy: CRIU's own way, one thread per process copying
 * the pages while it restores; parallel: CRIU restores without copying, then worker processes of the
 * `criu lazy-pages` daemon copy every page in before the tree resumes (needs the "lazy-prefill" patch of
 * the CRIU that set-up builds); lazy: pages come on first touch through `criu lazy-pages` (userfaultfd);
 * auto: parallel where the CRIU has the patch and the images are in the page cache, else copy (why: see
 * criuMemory in restore/restore.ts).
 */
export const MEMORY_MODES = ["auto", "copy", "parallel", "lazy"] as const;
export type MemoryMode = (typeof MEMORY_MODES)[number];
export const DEFAULT_MEMORY: MemoryMode = "auto";
