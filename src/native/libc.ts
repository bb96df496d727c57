/**
 * The only module that calls libc: the page-cache system calls (posix_fadvise, readahead, mmap, madvise,
 * mincore, cachestat), and re-arming another process's timerfd (pidfd_getfd, timerfd_settime), through koffi.
 * koffi and libc are loaded on the first call, so importing this module
 * costs nothing (`stasis --help` never loads FFI). Every wrapper turns a failed call (-1 and errno, or an error
 * number returned directly) into a StasisError whose `details.errno` names the errno ("EFAULT"); `errnoOf`
 * reads it. Safe to use from worker threads: each thread loads its own handle.
 *
 * @example
 *   const fd = openSync(path, "r");
 *   const vec = new Uint8Array(Math.ceil(size / pageSize()));
 *   withMapping(fd, 0, size, path, (m) => mincore(m, vec)); // vec[i] & 1: page i is in the page cache
 */
import { createRequire } from "node:module";
import { StasisError, type ErrorCode } from "../errors.js";

type Koffi = typeof import("koffi");
type Fn = ReturnType<ReturnType<Koffi["load"]>["func"]>;

/** posix_fadvise advice values (Linux). */
export const FADV = { NORMAL: 0, RANDOM: 1, SEQUENTIAL: 2, WILLNEED: 3, DONTNEED: 4, NOREUSE: 5 } as const;
/** madvise advice values (Linux). POPULATE_READ (5.14+) faults a range in and waits for the reads; HUGEPAGE on a
 *  file mapping makes its faults read the page cache in 2 MiB folios (where the filesystem has large folios). */
export const MADV = { WILLNEED: 3, HUGEPAGE: 14, POPULATE_READ: 22 } as const;

const PROT_READ = 0x1;
const MAP_SHARED = 0x1;
const SC_PAGESIZE = 30;
const MAP_FAILED = 0xffffffffffffffffn;
/** The cachestat syscall's number: the same in the x86-64 table and the generic one (arm64). */
const SYS_CACHESTAT = 451;
/** pidfd_open and pidfd_getfd: the same numbers in the x86-64 table and the generic one (arm64). */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
/** _IOW('T', 0, __u64): sets a timerfd's count of expiries not yet read (the kernel's CHECKPOINT_RESTORE). */
const TFD_IOC_SET_TICKS = 0x40085400;

interface Libc {
  koffi: Koffi;
  posixFadvise: Fn;
  readahead: Fn;
  mmap: Fn;
  munmap: Fn;
  madvise: Fn;
  mincore: Fn;
  strerror: Fn;
  cachestat: Fn;
  pidfdOpen: Fn;
  pidfdGetfd: Fn;
  timerfdSettime: Fn;
  ioctl: Fn;
  close: Fn;
  /** Whether the kernel has cachestat(2) (6.5+); cleared on the first ENOSYS. */
  hasCachestat: boolean;
  pageSize: number;
  errnoNames: Map<number, string>;
}

/** koffi and libc as every libc wrapper here needs them: the library, errno's names, strerror and close. */
export interface LibcBase {
  koffi: Koffi;
  lib: ReturnType<Koffi["load"]>;
  strerror: Fn;
  close: Fn;
  errnoNames: Map<number, string>;
}

let base: LibcBase | undefined;

/** Loads koffi and libc once (per thread), for this module and the others in src/native that call libc. */
export function libcBase(): LibcBase {
  if (base) return base;
  let koffi: Koffi;
  let lib: ReturnType<Koffi["load"]>;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
    lib = koffi.load("libc.so.6");
  } catch (err) {
    throw new StasisError("E_TOOL_MISSING", `cannot load libc through koffi: ${(err as Error).message}`, {
      cause: err,
      hint: "reinstall stasis's dependencies (`npm ci --ignore-scripts`); koffi's prebuilt binary for this platform must be present",
    });
  }
  base = {
    koffi,
    lib,
    strerror: lib.func("const char *strerror(int errnum)"),
    close: lib.func("int close(int fd)"),
    errnoNames: new Map(Object.entries(koffi.os.errno).map(([name, n]) => [n, name])),
  };
  return base;
}

let loaded: Libc | undefined;

function libc(): Libc {
  if (loaded) return loaded;
  const { koffi, lib, strerror, close, errnoNames } = libcBase();
  const sysconf = lib.func("long sysconf(int name)");
  loaded = {
    koffi,
    posixFadvise: lib.func("int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)"),
    readahead: lib.func("int64_t readahead(int fd, int64_t offset, size_t count)"),
    mmap: lib.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)"),
    munmap: lib.func("int munmap(void *addr, size_t length)"),
    madvise: lib.func("int madvise(void *addr, size_t length, int advice)"),
    mincore: lib.func("int mincore(void *addr, size_t length, void *vec)"),
    strerror,
    // glibc has no cachestat() wrapper. syscall() is variadic, but a fixed prototype of integers and
    // pointers is called the same way on x86-64 and arm64, and is much cheaper to call through koffi.
    cachestat: lib.func("syscall", "long", ["long", "int", "void *", "void *", "unsigned int"]),
    pidfdOpen: lib.func("syscall", "long", ["long", "int", "unsigned int"]),
    pidfdGetfd: lib.func("syscall", "long", ["long", "int", "int", "unsigned int"]),
    timerfdSettime: lib.func("int timerfd_settime(int fd, int flags, void *new_value, void *old_value)"),
    // ioctl is variadic; one pointer argument is passed the same way as a fixed one on x86-64 and arm64.
    ioctl: lib.func("ioctl", "int", ["int", "unsigned long", "void *"]),
    close,
    hasCachestat: true,
    pageSize: Number(sysconf(SC_PAGESIZE)),
    errnoNames,
  };
  return loaded;
}

function fail(call: string, errno: number, path: string | undefined): StasisError {
  const l = libc();
  const name = l.errnoNames.get(errno) ?? `errno ${errno}`;
  const what = `${call}${path ? ` on ${path}` : ""} failed: ${name} (${String(l.strerror(errno))})`;
  const code: ErrorCode =
    name === "ENOENT" ? "E_FILE_NOT_FOUND" : name === "EACCES" || name === "EPERM" ? "E_PERMISSION" : "E_IO";
  return new StasisError(code, what, {
    hint: code === "E_PERMISSION" ? "stasis runs as root (CRIU needs it); check the file's owner and mode" : undefined,
    details: { call, errno: name, ...(path ? { path } : {}) },
  });
}

/** The errno name ("EFAULT") a libc wrapper failed with, or undefined for any other error. */
export function errnoOf(err: unknown): string | undefined {
  const e = err instanceof StasisError ? err.details?.errno : undefined;
  return typeof e === "string" ? e : undefined;
}

/** The kernel's page size in bytes (sysconf(_SC_PAGESIZE)). */
export function pageSize(): number {
  return libc().pageSize;
}

/** posix_fadvise(2). Note: WILLNEED reads at most the device's readahead window per call (mm/readahead.c). */
export function fadvise(fd: number, offset: number, length: number, advice: number, path?: string): void {
  const rc = libc().posixFadvise(fd, offset, length, advice) as number;
  if (rc !== 0) throw fail("posix_fadvise", rc, path); // returns the error number itself, not -1
}

/** readahead(2): the same kernel path as fadvise(WILLNEED) since Linux 5.x. */
export function readahead(fd: number, offset: number, count: number, path?: string): void {
  const l = libc();
  if (Number(l.readahead(fd, offset, count)) < 0) throw fail("readahead", l.koffi.errno(), path);
}

/** A read-only shared mapping of part of a file. Only `withMapping` hands one out, and unmaps it. */
export interface Mapping {
  readonly ptr: unknown;
  /** File offset of the first mapped byte (a multiple of the page size). */
  readonly offset: number;
  readonly length: number;
  readonly path: string | undefined;
}

/**
 * Maps [offset, offset + length) of `fd` read-only (offset must be page-aligned) and runs `body` with it.
 * Touching the memory of a mapping past the end of a file that shrank raises SIGBUS, so the mapping never
 * leaves this module as memory: callers only pass it to `madvise` and `mincore`, which report EFAULT instead.
 */
export function withMapping<T>(
  fd: number,
  offset: number,
  length: number,
  path: string | undefined,
  body: (m: Mapping) => T,
): T {
  const l = libc();
  if (offset % l.pageSize !== 0)
    throw new StasisError("E_INTERNAL", `mmap offset ${offset} is not a multiple of the page size ${l.pageSize}`);
  const ptr = l.mmap(null, length, PROT_READ, MAP_SHARED, fd, offset) as unknown;
  if (ptr === null || l.koffi.address(ptr) === MAP_FAILED) throw fail("mmap", l.koffi.errno(), path);
  try {
    return body({ ptr, offset, length, path });
  } finally {
    // Invariant: every mapping made here is unmapped before we return, error or not (no address-space leak).
    l.munmap(ptr, length);
  }
}

/** madvise(2) over the whole mapping. */
export function madvise(m: Mapping, advice: number): void {
  const l = libc();
  if ((l.madvise(m.ptr, m.length, advice) as number) !== 0) throw fail("madvise", l.koffi.errno(), m.path);
}

/** mincore(2) over the whole mapping: `vec[i] & 1` is set when page i of the mapping is in the page cache. */
export function mincore(m: Mapping, vec: Uint8Array): void {
  const l = libc();
  const pages = Math.ceil(m.length / l.pageSize);
  if (vec.length < pages)
    throw new StasisError("E_INTERNAL", `mincore needs ${pages} bytes of vector, got ${vec.length}`);
  if ((l.mincore(m.ptr, m.length, vec) as number) !== 0) throw fail("mincore", l.koffi.errno(), m.path);
}

const csRange = new BigUint64Array(2);
const csOut = new BigUint64Array(5);

/**
 * cachestat(2): how many pages of [offset, offset + length) are in the page cache, from one walk of the
 * cache (about 1 ms per GiB, ten times and more faster than mincore). `length` must be > 0 (0 means "to the
 * end of the file" to the kernel). Returns undefined where the kernel has no cachestat (before 6.5) or the
 * filesystem refuses it (hugetlbfs): use mincore then.
 */
export function cachestat(fd: number, offset: number, length: number, path?: string): number | undefined {
  const l = libc();
  if (!l.hasCachestat) return undefined;
  if (length <= 0) throw new StasisError("E_INTERNAL", `cachestat needs a length > 0, got ${length}`);
  csRange[0] = BigInt(offset);
  csRange[1] = BigInt(length);
  if (Number(l.cachestat(SYS_CACHESTAT, fd, csRange, csOut, 0)) === 0) return Number(csOut[0]);
  const errno = l.koffi.errno();
  const name = l.errnoNames.get(errno);
  if (name === "ENOSYS") l.hasCachestat = false;
  if (name === "ENOSYS" || name === "EOPNOTSUPP") return undefined;
  throw fail("cachestat", errno, path);
}

/**
 * Arms the timerfd `fd` of process `pid` again: periodic with `intervalNs`, first expiry one period from now, and
 * `ticks` expiries pending (a timer set again loses them). The timer is the process's own open file, reached
 * through a copy of its descriptor (pidfd_getfd, Linux 5.6+; needs the right to ptrace the process).
 */
export function rearmTimerfd(pid: number, fd: number, intervalNs: number, ticks: number): void {
  const l = libc();
  const pidfd = Number(l.pidfdOpen(SYS_PIDFD_OPEN, pid, 0));
  if (pidfd < 0) throw fail("pidfd_open", l.koffi.errno(), `/proc/${pid}`);
  let copy = -1;
  try {
    copy = Number(l.pidfdGetfd(SYS_PIDFD_GETFD, pidfd, fd, 0));
    if (copy < 0) throw fail("pidfd_getfd", l.koffi.errno(), `/proc/${pid}/fd/${fd}`);
    const sec = BigInt(Math.floor(intervalNs / 1e9));
    const nsec = BigInt(intervalNs % 1e9);
    // struct itimerspec: it_interval, then it_value (each tv_sec, tv_nsec).
    if ((l.timerfdSettime(copy, 0, new BigInt64Array([sec, nsec, sec, nsec]), null) as number) !== 0) {
      throw fail("timerfd_settime", l.koffi.errno(), `/proc/${pid}/fd/${fd}`);
    }
    if (ticks > 0 && (l.ioctl(copy, TFD_IOC_SET_TICKS, new BigUint64Array([BigInt(ticks)])) as number) !== 0) {
      throw fail("ioctl(TFD_IOC_SET_TICKS)", l.koffi.errno(), `/proc/${pid}/fd/${fd}`);
    }
  } finally {
    // Invariant: the copies of the process's descriptors made here are closed; the process keeps its own.
    if (copy >= 0) l.close(copy);
    l.close(pidfd);
  }
}
