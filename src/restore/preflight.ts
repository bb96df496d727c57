import type { Config } from "../config/config.js";
import { join } from "node:path";
import { residency } from "../pagecache/residency.js";
import { StasisError } from "../errors.js";
import { locateCriu, type Criu } from "../criu/locate.js";
import type { CriuMemory } from "../criu/restore.js";
import { gpuIdentityFromProc, type GpuInventory } from "../cuda/gpus.js";
import type { Snapshot } from "../store/store.js";
import { DEFAULT_MEMORY, resolvePrefetch, type MemoryMode, type PrefetchMode } from "./modes.js";

/** What the restore found here before it starts anything, and the reads and memory mode it chose from that. */
export interface Here {
  criu: Criu;
  /** This machine's GPUs as /proc tells (no driver start-up to wait for); undefined for a snapshot without GPU
   *  state. */
  procGpu: GpuInventory | undefined;
  prefetch: Exclude<PrefetchMode, "auto">;
  memory: CriuMemory;
}

/**
 * Step "preflight": finds CRIU, this machine's GPUs (from /proc) and, where a choice depends on it, whether the
 * snapshot's images are in the page cache; then resolves --prefetch and --memory.
 */
export async function lookAround(
  snap: Snapshot,
  opts: { prefetch: PrefetchMode; memory?: MemoryMode; config: Pick<Config, "criu"> },
): Promise<Here> {
  const m = snap.manifest;
  const wanted = opts.memory ?? DEFAULT_MEMORY;
  const [criu, procGpu, imagesResident] = await Promise.all([
    locateCriu(opts.config.criu),
    m.gpu ? gpuIdentityFromProc() : Promise.resolve(undefined),
    wanted === "auto" || opts.prefetch === "auto" ? imagesInMemory(snap) : Promise.resolve(false),
  ]);
  return { criu, procGpu, ...choose(criu, wanted, opts.prefetch, imagesResident) };
}

function choose(
  criu: Criu,
  memory: MemoryMode,
  prefetch: PrefetchMode,
  imagesResident: boolean,
): Pick<Here, "prefetch" | "memory"> {
  const reads = resolvePrefetch(prefetch, imagesResident);
  // Images being read into the page cache beside CRIU count as in memory: the parallel copy then reads them there.
  return { prefetch: reads, memory: criuMemory(memory, criu, imagesResident || reads === "images" || reads === "all") };
}

/**
 * The memory mode CRIU runs with. auto: parallel where this CRIU has stasis's "lazy-prefill" patch and the
 * snapshot's images are in the page cache, copy otherwise. Why: docs/decisions/0001-criu-memory.md.
 * parallel asked for on a CRIU without the patch is refused, not quietly downgraded.
 */
export function criuMemory(mode: MemoryMode, criu: Criu, imagesResident: boolean): CriuMemory {
  const patched = criu.features.includes("lazy-prefill");
  if (mode === "auto") return patched && imagesResident ? "parallel" : "copy";
  if (mode === "parallel" && !patched) {
    throw new StasisError(
      "E_CRIU_FEATURE",
      `--memory parallel needs stasis's CRIU patch (lazy-prefill); ${criu.path} (${criu.version}) lacks it`,
      {
        hint: "run scripts/install-criu.sh (set-up does), which builds CRIU with stasis's patches, or use --memory copy",
      },
    );
  }
  return mode;
}

/** Whether most (>= half) of the snapshot's CRIU images are in the page cache. */
export async function imagesInMemory(snap: Snapshot): Promise<boolean> {
  const images = snap.manifest.files.filter((f) => f.role === "image" && f.size > 0).map((f) => join(snap.dir, f.path));
  // A missing or unreadable image fails the restore later, with its own error.
  const counts = await residency(images).catch(() => []);
  const size = counts.reduce((n, r) => n + r.size, 0);
  return size > 0 && counts.reduce((n, r) => n + r.residentBytes, 0) * 2 >= size;
}
