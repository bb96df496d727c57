import type { CliCommand } from "../registry.js";
import { num, oneOf, str } from "../args.js";
import { interruptSignal } from "../interrupt.js";
import { formatBytes, formatMs } from "../../text.js";
import type { DaemonPin } from "../../serve/client.js";

export const command: CliCommand = {
  args: ["[paths...]"],
  forms: ["prefetch --snapshot NAME [paths...] [options]"],
  help: [
    "Reads files (directories: every file under them) or a snapshot's files into the page cache, in parallel,",
    "in the order given. A progress bar on a terminal shows bytes, GB/s and the time left.",
  ].join("\n"),
  options: {
    snapshot: {
      type: "string",
      arg: "NAME",
      help: [
        "the snapshot's files, in restore order; paths then select files inside it. The whole",
        "snapshot: also its working set (the pages of the engine's own libraries its last",
        "restore touched) and, where `stasis serve --pin-weights` runs, its weights pinned by",
        "the daemon: everything a restore of it reads is then in memory",
      ].join("\n"),
    },
    concurrency: { type: "string", arg: "N", help: "worker threads (default: cores, at least 4, at most 8)" },
    "skip-resident": { type: "boolean", help: "read only what is not in the page cache yet" },
    verify: {
      type: "boolean",
      help: "check every chunk against the snapshot's digests (reads every byte; needs --snapshot)",
    },
    strategy: {
      type: "string",
      arg: "S",
      help: "populate (default: mmap + MADV_POPULATE_READ, no copy), read (pread), fadvise (WILLNEED)",
    },
    "chunk-mib": { type: "string", arg: "N", help: "MiB per job (default 8)" },
    "large-folios": {
      type: "boolean",
      help: [
        "populate: ask for the page cache in 2 MiB folios (MADV_HUGEPAGE), so the disk gets larger",
        "reads (needs THP and a filesystem with large folios; may read up to 2 MiB past a range)",
      ].join("\n"),
    },
  },
  async run({ values, positionals, events, config }) {
    const { signal, dispose } = interruptSignal();
    try {
      const { prefetch } = await import("../../commands/prefetch.js");
      const r = await prefetch(
        {
          paths: positionals,
          snapshot: str(values, "snapshot"),
          config,
          concurrency:
            values.concurrency === undefined ? undefined : num(values, "concurrency", 0, { min: 1, max: 256 }),
          chunkBytes:
            values["chunk-mib"] === undefined
              ? undefined
              : num(values, "chunk-mib", 0, { min: 1, max: 1024 }) * (1 << 20),
          strategy: oneOf(values, "strategy", ["populate", "read", "fadvise"] as const, "populate"),
          skipResident: Boolean(values["skip-resident"]),
          verify: Boolean(values.verify),
          largeFolios: Boolean(values["large-folios"]),
          signal,
        },
        events,
      );
      const what = r.snapshot
        ? `snapshot "${r.snapshot}" (${r.files} files, ${formatBytes(r.bytesTotal)})`
        : `${r.files} files (${formatBytes(r.bytesTotal)})`;
      const text =
        `prefetched ${what} in ${formatMs(r.ms)}: read ${formatBytes(r.bytesRead)} at ${r.gbps.toFixed(2)} GB/s, ` +
        `${formatBytes(r.bytesAlreadyResident)} was already in memory` +
        `${r.bytesVerified ? `, verified ${formatBytes(r.bytesVerified)}` : ""} (${r.strategy}, ${r.concurrency} thread${r.concurrency === 1 ? "" : "s"})` +
        (r.daemonPin ? `\n${pinText(r.daemonPin)}` : "");
      // The daemon's answer counts seconds; the CLI's documents count milliseconds, like every duration there.
      const pin =
        r.daemonPin && "pinned" in r.daemonPin
          ? {
              pinned: {
                bytes: r.daemonPin.pinned.bytes,
                already: r.daemonPin.pinned.already,
                durationMs: r.daemonPin.pinned.seconds * 1000,
              },
            }
          : r.daemonPin;
      return { data: { ...r, ...(pin ? { daemonPin: pin } : {}) }, text };
    } finally {
      dispose();
    }
  },
};

function pinText(p: DaemonPin): string {
  if ("notPinned" in p) return `stasis serve did not pin the weights: ${p.notPinned}`;
  const how = p.pinned.already ? "already pinned" : `pinned in ${formatMs(p.pinned.seconds * 1000)}`;
  return `stasis serve holds the weights (${formatBytes(p.pinned.bytes)}) in pinned memory: ${how}`;
}
