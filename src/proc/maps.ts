import { readFile } from "node:fs/promises";

/** A line of /proc/PID/maps that maps a file by path (anonymous memory, [heap], [stack], [vdso] are left out). */
export interface FileMapping {
  start: number;
  end: number;
  /** Offset of `start` in the file. */
  offset: number;
  inode: number;
  /** Without the kernel's " (deleted)" mark, which sets `deleted`. */
  path: string;
  deleted: boolean;
}

const DELETED = " (deleted)";

/** The file mappings in the text of /proc/PID/maps ("start-end perms offset dev inode path"). */
export function parseMaps(text: string): FileMapping[] {
  const out: FileMapping[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+([0-9a-f]+)\s+\S+\s+(\d+)\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const deleted = m[5]!.endsWith(DELETED);
    out.push({
      start: parseInt(m[1]!, 16),
      end: parseInt(m[2]!, 16),
      offset: parseInt(m[3]!, 16),
      inode: Number(m[4]),
      path: deleted ? m[5]!.slice(0, -DELETED.length) : m[5]!,
      deleted,
    });
  }
  return out;
}

/** The file mappings of process `pid` (none once it is gone). */
export async function readMaps(pid: number): Promise<FileMapping[]> {
  return parseMaps(await readFile(`/proc/${pid}/maps`, "utf8").catch(() => ""));
}
