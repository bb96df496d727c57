import type { Events } from "../events.js";
import { residency as residencyOf, type Residency } from "../pagecache/residency.js";
import { resolveTargets } from "../pagecache/targets.js";

export interface ResidencyOptions {
  /** Files or directories; with `snapshot`, paths inside it (all of its files when empty). */
  paths: string[];
  snapshot?: string;
}

export interface ResidencyResult {
  /** The snapshot's name and folder, when its files were the target. */
  snapshot?: string;
  snapshotDir?: string;
  files: Residency[];
  total: { files: number; size: number; residentBytes: number; pages: number; residentPages: number };
}

/** How much of files, directories or a snapshot is in the page cache (mincore). Quick: no phase, no progress. */
export async function residency(opts: ResidencyOptions, _events: Events): Promise<ResidencyResult> {
  const targets = await resolveTargets(opts, "residency");
  const files = await residencyOf(targets.files.map((f) => f.path));
  const total = { files: files.length, size: 0, residentBytes: 0, pages: 0, residentPages: 0 };
  for (const f of files) {
    total.size += f.size;
    total.residentBytes += f.residentBytes;
    total.pages += f.pages;
    total.residentPages += f.residentPages;
  }
  return {
    ...(targets.snapshot ? { snapshot: targets.snapshot.name, snapshotDir: targets.snapshot.dir } : {}),
    files,
    total,
  };
}
