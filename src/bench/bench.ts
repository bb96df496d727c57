import type { Config } from "../config/config.js";
import { mkdtemp, rm } from "node:fs/promises";
import { unpackCaches } from "../capture/caches.js";
import { hostname, cpus, release } from "node:os";
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { Events } from "../events.js";
import { openSnapshot } from "../store/store.js";
import { gpuInventory } from "../cuda/gpus.js";
import { benchSubject, type BenchSubject } from "./subject.js";
import { diskRate, type DiskRate } from "./disk.js";
import { STRATEGIES, restoreServer, startServer, type RestoreArgs, type Run, type Strategy } from "./strategies.js";
import {
  DEFAULT_MEMORY,
  DEFAULT_PREFETCH,
  DEFAULT_WEIGHTS,
  type MemoryMode,
  type PrefetchMode,
  type VerifyMode,
  type WeightsMode,
} from "../restore/modes.js";

export interface BenchOptions {
  snapshot: string;
  strategies: Strategy[];
  repeat: number;
  /** Repeats of the slow cases (cold, warm); defaults to `repeat`. */
  repeatStarts?: number;
  verify: VerifyMode;
  prefetch?: PrefetchMode;
  memory?: MemoryMode;
  weights?: WeightsMode;
  /** How each restore is asked for: a `stasis restore` process (cli, default) or a request to `stasis serve` (api). */
  via?: "cli" | "api";
  /** The STASIS_* settings: the cold and warm starts launch as a capture would, the hot restores prefetch CRIU. */
  config: Config;
}

export interface StrategySummary {
  strategy: Strategy;
  setup: string;
  runs: Run[];
  medianReadyMs: number;
  medianFirstTokenMs: number;
  /** The phases of the run whose time to first token is the median. */
  phases: Run["phases"];
  /** restore-cold: the disks during that same run (Run.disk). */
  disk?: Run["disk"];
  /** Cold cases: the median of what each run read from the machine's disks before its first token. */
  medianDiskBytesRead?: number;
}

export interface BenchReport {
  date: string;
  machine: { host: string; cpus: number; cpuModel: string; kernel: string; gpu?: string; driver?: string };
  /** The engine and model the snapshot holds (absent in results written before they were recorded). */
  engine?: BenchSubject["engine"];
  model?: BenchSubject["model"];
  command: string;
  snapshot: string;
  repeat: number;
  repeatStarts?: number;
  verify: string;
  prefetch?: string;
  memory?: string;
  weights?: string;
  via?: string;
  strategies: StrategySummary[];
  /** cold start / restore-hot, by time to first token, when both ran. */
  speedup?: number;
  /** With restore-cold: the disk's parallel read of the snapshot files a restore reads before its first token
   *  (`ms` is the fastest a cold restore could read them), and restore-cold's time to first token over `ms`. */
  disk?: DiskRate;
  coldRatio?: number;
  /** With restore-cold: what its runs really read from the machine's disks before the first token (median), that
   *  many bytes at the disk's measured rate, and restore-cold's time to first token over that. */
  coldDiskRead?: { bytes: number; ms: number; ratio: number };
}

/** The snapshot files a restore reads before the first token: CRIU's images and files, the weights. */
const READ_BEFORE_FIRST_TOKEN = new Set(["image", "link-remap", "shm", "weights"]);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Starts the snapshot's server every way in `strategies`, `repeat` times each, interleaved round by round
 * (cold, warm, restore-hot, restore-cold, cold, ...) so that a noisy machine spreads its noise over all of them.
 */
export async function bench(opts: BenchOptions, events: Events, command: string): Promise<BenchReport> {
  const snap = await openSnapshot(opts.snapshot);
  const strategies = STRATEGIES.filter((s) => opts.strategies.includes(s));
  const warmCaches = await mkdtemp(join(tmpdir(), "stasis-bench-warm-"));
  const runs = new Map<Strategy, Run[]>(strategies.map((s) => [s, []]));
  let disk: DiskRate | undefined;
  const restoreArgs: RestoreArgs = {
    verify: opts.verify,
    prefetch: opts.prefetch ?? DEFAULT_PREFETCH,
    memory: opts.memory ?? DEFAULT_MEMORY,
    weights: opts.weights ?? DEFAULT_WEIGHTS,
    via: opts.via ?? "cli",
    config: opts.config,
  };
  try {
    if (strategies.includes("warm")) {
      // Warm means compile caches filled: the ones captured with the snapshot, or else filled by one
      // unmeasured start.
      if (snap.manifest.caches.length > 0) {
        // Unpacked as <dir>/<variable>, the layout cacheEnv() points the server at.
        await unpackCaches(snap.dir, snap.manifest.caches, warmCaches);
      } else {
        await events.phase("warm-caches", () => startServer(snap, "warm", warmCaches, opts.config));
      }
    }
    if (strategies.includes("restore-cold")) {
      const readFirst = snap.manifest.files
        .filter((f) => READ_BEFORE_FIRST_TOKEN.has(f.role))
        .map((f) => ({ path: join(snap.dir, f.path), size: f.size }));
      if (readFirst.length > 0)
        disk = await events.phase(
          "disk-rate",
          () => diskRate(readFirst),
          (d) => ({ bytes: d.bytes }),
        );
    }
    const starts = opts.repeatStarts ?? opts.repeat;
    const rounds = Math.max(opts.repeat, starts);
    const runsOf = (s: Strategy) => (s === "cold" || s === "warm" ? starts : opts.repeat);
    const total = strategies.reduce((a, s) => a + runsOf(s), 0);
    let done = 0;
    for (let round = 0; round < rounds; round++) {
      for (const s of strategies) {
        if (round >= runsOf(s)) continue;
        const run = await events.phase(`${s} #${round + 1}`, () =>
          s === "cold" || s === "warm"
            ? startServer(snap, s, warmCaches, opts.config)
            : restoreServer(snap, s, restoreArgs),
        );
        runs.get(s)!.push(run);
        events.progress("bench", ++done, total, "items");
      }
    }
  } finally {
    await rm(warmCaches, { recursive: true, force: true });
  }
  const summaries: StrategySummary[] = strategies.map((s) => {
    const rs = runs.get(s)!;
    const mid = median(rs.map((r) => r.firstTokenMs));
    const rep = rs.reduce(
      (best, r) => (Math.abs(r.firstTokenMs - mid) < Math.abs(best.firstTokenMs - mid) ? r : best),
      rs[0]!,
    );
    return {
      strategy: s,
      setup: rs[0]!.setup,
      runs: rs,
      medianReadyMs: median(rs.map((r) => r.readyMs)),
      medianFirstTokenMs: mid,
      phases: rep.phases,
      ...(rep.disk ? { disk: rep.disk } : {}),
      ...(rs.every((r) => r.diskBytesRead !== undefined)
        ? { medianDiskBytesRead: median(rs.map((r) => r.diskBytesRead!)) }
        : {}),
    };
  });
  const inv = await gpuInventory();
  const cold = summaries.find((s) => s.strategy === "cold");
  const hot = summaries.find((s) => s.strategy === "restore-hot");
  const restoreCold = summaries.find((s) => s.strategy === "restore-cold");
  // restore-cold's disk bytes at the disk's measured rate: the fastest those bytes could have been read.
  const coldReadMs =
    disk && restoreCold?.medianDiskBytesRead ? (restoreCold.medianDiskBytesRead / disk.bytes) * disk.ms : undefined;
  return {
    date: new Date().toISOString(),
    machine: {
      host: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      kernel: release(),
      ...(inv ? { gpu: inv.gpus.map((g) => g.name).join(", "), driver: inv.driver } : {}),
    },
    ...(await benchSubject(snap)),
    command,
    snapshot: opts.snapshot,
    repeat: opts.repeat,
    repeatStarts: opts.repeatStarts,
    ...restoreArgs,
    strategies: summaries,
    ...(cold && hot ? { speedup: cold.medianFirstTokenMs / hot.medianFirstTokenMs } : {}),
    ...(disk ? { disk } : {}),
    ...(disk && restoreCold ? { coldRatio: restoreCold.medianFirstTokenMs / disk.ms } : {}),
    ...(coldReadMs !== undefined && restoreCold?.medianDiskBytesRead
      ? {
          coldDiskRead: {
            bytes: restoreCold.medianDiskBytesRead,
            ms: coldReadMs,
            ratio: restoreCold.medianFirstTokenMs / coldReadMs,
          },
        }
      : {}),
  };
}
