/**
 * The choices a restore offers, without the code behind them (the CLI parses them before loading any of it).
 * verify: how the snapshot's bytes are checked; prefetch: what is read into the page cache ahead of CRIU.
 * See restore/background-reads.ts.
 */
export const VERIFY_MODES = ["auto", "full", "size", "none"] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

export const PREFETCH_MODES = ["all", "images", "none"] as const;
export type PrefetchMode = (typeof PREFETCH_MODES)[number];
