/**
 * The restore's working set: the pages of files outside the snapshot (the engine's interpreter and libraries:
 * Python, torch, CUDA) that a restored tree faults in on its way to the canary. CRIU maps those files again but
 * reads none of them, so from a cold page cache each first touch is a small read that the process waits for
 * (docs/decisions/0004-working-set.md). After a restore's canary, the file pages the restored processes have
 * mapped (their page tables, from
 * /proc/PID/pagemap: present, see presentFileRanges) are recorded beside the snapshot (working-set.json); a later
 * restore whose page cache is cold reads them in parallel while CRIU restores. Advisory only: a file that changed
 * since is skipped, a failure is a warning.
 */
import { open, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Events } from "../events.js";
import { prefetch, type PrefetchFile } from "../pagecache/prefetch.js";
import { readMaps, type FileMapping } from "../proc/maps.js";

export const WORKING_SET_FILE = "working-set.json";
const PAGE = 4096;
/** Neighbouring ranges closer than this are read as one (fewer, larger reads; a few pages more). */
const MERGE_GAP = 256 * 1024;
/**
 * The head of every file is read too: CRIU's restore checks each mapped ELF file's build-id (its default file
 * validation), reading the first pages of every library, one file after another, before the tree runs.
 */
const HEAD_BYTES = 16 * 1024;

const WorkingSetSchema = z.object({
  version: z.literal(1),
  recordedAt: z.string(),
  bytes: z.number(),
  files: z.array(
    z.object({
      path: z.string(),
      dev: z.string(),
      ino: z.string(),
      size: z.number(),
      mtimeMs: z.number(),
      /** [offset, length] pairs, sorted, page-aligned, not overlapping. */
      ranges: z.array(z.tuple([z.number(), z.number()])),
    }),
  ),
});
export type WorkingSet = z.infer<typeof WorkingSetSchema>;

/** The mappings of regular files, by path (not deleted ones, devices, /proc, /sys, memfds). */
export function fileMappings(maps: FileMapping[]): FileMapping[] {
  return maps.filter((m) => m.inode !== 0 && !m.deleted && !/^\/(dev|proc|sys|memfd:)/.test(m.path));
}

/**
 * The file offsets of the pages of `mapping` that are present, from its pagemap entries (8 bytes per page: bit 63
 * present, bit 62 swapped), as [offset in the file, length] ranges. File pages the tree touched, and also a private
 * mapping's pages written since (anonymous copies now, bit 61 clear): CRIU dumped those and, restoring them, writes
 * into the private mapping, a copy-on-write fault that first reads the file's page; from a cold page cache with
 * the kernel's read-around (read_ahead_kb) for each.
 */
export function presentFileRanges(mapping: Pick<FileMapping, "offset">, pagemap: Buffer): [number, number][] {
  const out: [number, number][] = [];
  const pages = Math.floor(pagemap.length / 8);
  let runStart = -1;
  for (let i = 0; i <= pages; i++) {
    const hi = i < pages ? pagemap.readUInt32LE(i * 8 + 4) : 0;
    const hit = (hi & 0xc0000000) !== 0;
    if (hit && runStart < 0) runStart = i;
    if (!hit && runStart >= 0) {
      out.push([mapping.offset + runStart * PAGE, (i - runStart) * PAGE]);
      runStart = -1;
    }
  }
  return out;
}

/** Sorted, merged ranges (gaps under `gap` bytes closed), clipped to `size`. */
export function mergeRanges(ranges: [number, number][], size: number, gap = MERGE_GAP): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [off, len] of sorted) {
    const end = Math.min(off + len, size);
    if (end <= off) continue;
    const last = out.at(-1);
    if (last && off <= last[0] + last[1] + gap) last[1] = Math.max(last[1], end - last[0]);
    else out.push([off, end - off]);
  }
  return out;
}

/** Reads the working set of the processes `pids` (the restored tree, after its canary). */
export async function recordWorkingSet(pids: number[]): Promise<WorkingSet> {
  const byFile = new Map<string, { path: string; ranges: [number, number][] }>();
  for (const pid of pids) {
    const maps = await readMaps(pid);
    const fh = await open(`/proc/${pid}/pagemap`, "r").catch(() => undefined);
    if (!fh) continue;
    try {
      for (const mapping of fileMappings(maps)) {
        const pages = (mapping.end - mapping.start) / PAGE;
        const buf = Buffer.alloc(pages * 8);
        const { bytesRead } = await fh.read(buf, 0, buf.length, (mapping.start / PAGE) * 8);
        const ranges = presentFileRanges(mapping, buf.subarray(0, bytesRead));
        // Files with no page touched stay listed: CRIU opens every mapped file, and from a cold cache its path's
        // directories and inode are disk reads too.
        const entry = byFile.get(mapping.path) ?? { path: mapping.path, ranges: [] };
        entry.ranges.push(...ranges);
        byFile.set(mapping.path, entry);
      }
    } finally {
      await fh.close();
    }
  }
  const files: WorkingSet["files"] = [];
  for (const { path, ranges } of byFile.values()) {
    const st = await stat(path).catch(() => undefined);
    if (!st || !st.isFile()) continue;
    const head: [number, number] = [0, Math.min(HEAD_BYTES, st.size)];
    files.push({
      path,
      dev: String(st.dev),
      ino: String(st.ino),
      size: st.size,
      mtimeMs: st.mtimeMs,
      ranges: mergeRanges([head, ...ranges], st.size),
    });
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  const bytes = files.reduce((n, f) => n + f.ranges.reduce((m, r) => m + r[1], 0), 0);
  return { version: 1, recordedAt: new Date().toISOString(), bytes, files };
}

export async function saveWorkingSet(snapshotDir: string, ws: WorkingSet): Promise<void> {
  const path = join(snapshotDir, WORKING_SET_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(ws), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** The snapshot's recorded working set, or undefined (none yet, or unreadable: it is advisory). */
export async function loadWorkingSet(snapshotDir: string): Promise<WorkingSet | undefined> {
  try {
    const parsed = WorkingSetSchema.safeParse(JSON.parse(await readFile(join(snapshotDir, WORKING_SET_FILE), "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The ranges to read of the files that are still the ones recorded (same device, inode, size and mtime). Every
 * file is looked up at once, which also brings its path's directories and inode into memory before CRIU opens it.
 */
export async function workingSetReads(
  ws: WorkingSet,
): Promise<{ reads: PrefetchFile[]; bytes: number; changedFiles: number }> {
  const reads: PrefetchFile[] = [];
  let bytes = 0;
  let changedFiles = 0;
  const stats = await Promise.all(ws.files.map((f) => stat(f.path).catch(() => undefined)));
  for (const [i, f] of ws.files.entries()) {
    const st = stats[i];
    if (!st || String(st.dev) !== f.dev || String(st.ino) !== f.ino || st.size !== f.size || st.mtimeMs !== f.mtimeMs) {
      changedFiles++;
      continue;
    }
    for (const [offset, length] of f.ranges) {
      reads.push({ path: f.path, offset, length, expectSize: f.size, expectMtimeMs: f.mtimeMs });
      bytes += length;
    }
  }
  return { reads, bytes, changedFiles };
}

/**
 * Starts reading the snapshot's working set into the page cache (what is there already is skipped), as the phase
 * "working-set", beside the restore's other reads and with few threads: its ranges are small (tens of MB in all
 * for the 3B engine) and needed only once the engine runs (its wake and canary), but read then, one page fault at a
 * time from a cold disk, they would be waited for after the weights. Why: docs/decisions/0004-working-set.md.
 * Settles when all is read; never rejects: a failure is a warning.
 */
export function startWorkingSet(snapshotDir: string, events: Events, signal?: AbortSignal): Promise<void> {
  return (async () => {
    try {
      const ws = await loadWorkingSet(snapshotDir);
      if (!ws) return;
      await events.phase(
        "working-set",
        async () => {
          const { reads, changedFiles } = await workingSetReads(ws);
          // Why: docs/decisions/0004-working-set.md (each range read exactly, fadvise WILLNEED, 4 threads).
          const stats = await prefetch(reads, {
            skipResident: true,
            concurrency: 4,
            chunkBytes: 2 << 20,
            strategy: "fadvise",
            ...(signal ? { signal } : {}),
          });
          return { ...stats, changedFiles };
        },
        (s) => ({
          bytes: s.bytesRead,
          detail: {
            files: ws.files.length - s.changedFiles,
            changedFiles: s.changedFiles,
            bytesAlreadyResident: s.bytesAlreadyResident,
            bytesTotal: s.bytesTotal,
          },
        }),
      );
    } catch (err) {
      if (!signal?.aborted)
        events.log(
          `reading the restore's working set failed (${(err as Error).message}); the engine reads its pages as it needs them`,
          "warn",
        );
    }
  })();
}
