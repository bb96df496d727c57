import { constants, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { StasisError, fsError } from "../errors.js";
import { cachestat, pageSize, withMapping, mincore } from "../native/libc.js";

/** A file, or a byte range of one: what prefetch, residency and evict take. */
export interface FileRange {
  path: string;
  /** First byte (default 0). */
  offset?: number;
  /** Bytes from `offset` (default: to the end of the file). */
  length?: number;
}

export function notAFile(path: string, st: Stats, doing: string): StasisError {
  const what = st.isDirectory()
    ? "a directory"
    : st.isFIFO()
      ? "a FIFO"
      : st.isSocket()
        ? "a socket"
        : "not a regular file";
  return new StasisError("E_NOT_A_FILE", `${doing}: ${path} is ${what}`, {
    hint: st.isDirectory()
      ? "pass the files under it (the CLI expands directories)"
      : "only regular files can be read into the page cache",
    details: { path },
  });
}

/** stat(2) a path that must be a regular file, with our errors (missing, permission, directory, FIFO...). */
export async function statRegular(path: string, doing: string): Promise<Stats> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    throw fsError(err, path, doing);
  }
  if (!st.isFile()) throw notAFile(path, st, doing);
  return st;
}

/**
 * Opens a regular file read-only. O_NONBLOCK keeps open(2) from hanging on a FIFO that slipped past a stat
 * (it has no effect on regular files); anything but a regular file is refused after fstat.
 */
export async function openRegular(path: string, doing: string): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fsError(err, path, doing);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notAFile(path, st, doing);
    return { fh, st };
  } catch (err) {
    await fh.close();
    throw err instanceof StasisError ? err : fsError(err, path, doing);
  }
}

/** A target of `eachRange`: its file open read-only, its range checked against the file's size. */
export interface OpenRange {
  path: string;
  fh: FileHandle;
  size: number;
  offset: number;
  length: number;
}

/** `fn` over each target in turn (a path: the whole file), each file opened for it and closed after. */
export async function eachRange<T>(
  targets: (string | FileRange)[],
  doing: string,
  fn: (r: OpenRange) => Promise<T> | T,
): Promise<T[]> {
  const out: T[] = [];
  for (const t of targets) {
    const r = typeof t === "string" ? { path: t } : t;
    const { fh, st } = await openRegular(r.path, doing);
    try {
      out.push(await fn({ path: r.path, fh, size: st.size, ...resolveRange(r, st.size) }));
    } finally {
      // Invariant: no descriptor outlives its target, whatever `fn` threw.
      await fh.close();
    }
  }
  return out;
}

/** Checks a range against a file's size; defaults to the whole file. */
export function resolveRange(r: FileRange, size: number): { offset: number; length: number } {
  const offset = r.offset ?? 0;
  const bad = (what: string) =>
    new StasisError("E_USAGE", `${r.path}: ${what} (the file has ${size} bytes)`, {
      hint: "pass an offset and length inside the file, as non-negative integers",
      details: { path: r.path, offset: r.offset, length: r.length, size },
    });
  if (!Number.isSafeInteger(offset) || offset < 0) throw bad(`offset must be a non-negative integer, got ${r.offset}`);
  if (offset > size) throw bad(`offset ${offset} is past the end`);
  const length = r.length ?? size - offset;
  if (!Number.isSafeInteger(length) || length < 0) throw bad(`length must be a non-negative integer, got ${r.length}`);
  if (offset + length > size) throw bad(`range ${offset}+${length} runs past the end`);
  return { offset, length };
}

/** Which pages of a byte range are in the page cache: `vec[i] & 1` for page `firstPage + i`. */
interface ResidentMap {
  firstPage: number;
  vec: Uint8Array;
  pageSize: number;
}

const WINDOW = 1 << 30;

/**
 * mincore(2) over [offset, offset + length) of an open file, mapped a window at a time so that a huge file
 * never needs a huge mapping. No I/O, but one page-cache lookup per page: about 20 ms per GiB.
 */
function residentMap(fd: number, offset: number, length: number, path: string): ResidentMap {
  const ps = pageSize();
  const firstPage = Math.floor(offset / ps);
  const endPage = Math.ceil((offset + length) / ps);
  const vec = new Uint8Array(endPage - firstPage);
  for (let at = firstPage * ps; at < endPage * ps; at += WINDOW) {
    const len = Math.min(WINDOW, endPage * ps - at);
    const part = new Uint8Array(len / ps);
    withMapping(fd, at, len, path, (m) => mincore(m, part));
    vec.set(part, (at - firstPage * ps) / ps);
  }
  return { firstPage, vec, pageSize: ps };
}

function countResidentPages(map: ResidentMap): number {
  let n = 0;
  for (const v of map.vec) n += v & 1;
  return n;
}

/** Resident pages and bytes of a byte range of an open file. */
export interface ResidentCount {
  pages: number;
  residentPages: number;
  residentBytes: number;
}

/**
 * Counts the resident pages and bytes of [offset, offset + length), exactly: with cachestat(2) where the
 * kernel has it (6.5+; one call for the whole pages, one for each partial page at the ends; about 2 ms per
 * GiB), else with mincore. `via: "mincore"` forces the latter (tests compare the two).
 */
export function residentIn(
  fd: number,
  offset: number,
  length: number,
  path: string,
  via: "auto" | "mincore" = "auto",
): ResidentCount {
  if (length === 0) return { pages: 0, residentPages: 0, residentBytes: 0 };
  const ps = pageSize();
  const end = offset + length;
  const firstPage = Math.floor(offset / ps);
  const endPage = Math.ceil(end / ps);
  const count = (a: number, b: number) =>
    (via === "auto" ? cachestat(fd, a, b - a, path) : undefined) ?? countResidentPages(residentMap(fd, a, b - a, path));
  // Up to three parts: a partial first page, the whole pages, a partial last page (bytes follow from pages).
  const parts: { a: number; b: number; partial: boolean }[] = [];
  if (endPage - firstPage === 1) parts.push({ a: offset, b: end, partial: true });
  else {
    const wholeStart = Math.ceil(offset / ps) * ps;
    const wholeEnd = Math.floor(end / ps) * ps;
    if (offset < wholeStart) parts.push({ a: offset, b: wholeStart, partial: true });
    if (wholeStart < wholeEnd) parts.push({ a: wholeStart, b: wholeEnd, partial: false });
    if (wholeEnd < end) parts.push({ a: wholeEnd, b: end, partial: true });
  }
  let residentPages = 0;
  let residentBytes = 0;
  for (const { a, b, partial } of parts) {
    const n = count(a, b);
    residentPages += n;
    residentBytes += partial ? (n > 0 ? b - a : 0) : n * ps;
  }
  return { pages: endPage - firstPage, residentPages, residentBytes };
}
