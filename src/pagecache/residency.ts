import { openRegular, resolveRange, residentIn, type FileRange } from "./_files.js";

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
export async function residency(targets: (string | FileRange)[]): Promise<Residency[]> {
  const out: Residency[] = [];
  for (const t of targets) {
    const r = typeof t === "string" ? { path: t } : t;
    const { fh, st } = await openRegular(r.path, "residency");
    try {
      const { offset, length } = resolveRange(r, st.size);
      const counts = residentIn(fh.fd, offset, length, r.path);
      out.push({ path: r.path, size: st.size, offset, length, ...counts });
    } finally {
      await fh.close();
    }
  }
  return out;
}
