import type { Events } from "../events.js";
import { evict as evictFiles, type Eviction } from "../pagecache/evict.js";
import { resolveTargets } from "../pagecache/targets.js";

export interface EvictOptions {
  /** Files or directories; with `snapshot`, paths inside it (all of its files when empty). */
  paths: string[];
  snapshot?: string;
}

export interface EvictResult {
  /** The snapshot's name and folder, when its files were the target. */
  snapshot?: string;
  snapshotDir?: string;
  files: Eviction[];
  total: { files: number; size: number; residentBytesBefore: number; residentBytesAfter: number };
}

/** Drops files, directories or a snapshot from the page cache (POSIX_FADV_DONTNEED). */
export async function evict(opts: EvictOptions, events: Events): Promise<EvictResult> {
  const targets = await resolveTargets(opts, "evict");
  const files = await events.phase("evict", () => evictFiles(targets.files.map((f) => f.path)));
  const total = { files: files.length, size: 0, residentBytesBefore: 0, residentBytesAfter: 0 };
  for (const f of files) {
    total.size += f.size;
    total.residentBytesBefore += f.residentBytesBefore;
    total.residentBytesAfter += f.residentBytesAfter;
  }
  return {
    ...(targets.snapshot ? { snapshot: targets.snapshot.name, snapshotDir: targets.snapshot.dir } : {}),
    files,
    total,
  };
}
