import { fsError } from "../errors.js";
import { fadvise, FADV } from "../native/libc.js";
import { eachRange, residentIn, type FileRange } from "./_files.js";

/** What evicting one file (or range) did. */
export interface Eviction {
  path: string;
  size: number;
  offset: number;
  length: number;
  residentBytesBefore: number;
  /** Pages still resident are mapped by some process, or locked: the kernel keeps those. */
  residentBytesAfter: number;
}

/**
 * Drops files (or byte ranges) from the page cache with posix_fadvise(POSIX_FADV_DONTNEED). Dirty pages cannot
 * be dropped, so when some stay resident the file is synced and advised once more. Pages that processes have
 * mapped stay (the kernel keeps them); `residentBytesAfter` says how much.
 *
 * @example
 *   const [e] = await evict(["/data/model.safetensors"]); // the next read of it comes from disk
 *   e.residentBytesAfter; // 0 unless a process has it mapped
 */
export function evict(targets: (string | FileRange)[]): Promise<Eviction[]> {
  return eachRange(targets, "evict", async ({ path, fh, size, offset, length }) => {
    const resident = () => residentIn(fh.fd, offset, length, path).residentBytes;
    const before = resident();
    // length 0 means "to the end of the file" to fadvise, which an empty range must not turn into.
    const drop = () => length > 0 && fadvise(fh.fd, offset, length, FADV.DONTNEED, path);
    drop();
    let after = before > 0 ? resident() : 0;
    if (after > 0) {
      await fh.datasync().catch((err: unknown) => {
        throw fsError(err, path, "evict");
      });
      drop();
      after = resident();
    }
    return { path, size, offset, length, residentBytesBefore: before, residentBytesAfter: after };
  });
}
