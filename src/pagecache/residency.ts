import { eachRange, residentIn, type FileRange } from "./_files.js";

/** How much of a file (or of a byte range of it) is in the page cache. */
export interface Residency {
  path: string;
  /** The file's size in bytes. */
  size: number;
  offset: number;
  length: number;
  /** Pages the range touches, and how many of them are resident (what `fincore` counts). */
  pages: number;
  residentPages: number;
  /** Resident bytes of the range (a partial last page counts only its bytes inside the range). */
  residentBytes: number;
}

/**
 * Page-cache residency of files or byte ranges, through cachestat(2) (mincore(2) on kernels before 6.5).
 * Reads nothing and changes nothing.
 *
 * @example
 *   const [r] = await residency(["/var/lib/stasis/snapshots/llama/images/pages-1.img"]);
 *   console.log(`${r.residentBytes} of ${r.size} bytes in memory`);
 */
export function residency(targets: (string | FileRange)[]): Promise<Residency[]> {
  return eachRange(targets, "residency", ({ path, fh, size, offset, length }) => ({
    path,
    size,
    offset,
    length,
    ...residentIn(fh.fd, offset, length, path),
  }));
}
