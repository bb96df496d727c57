import { lstat, readdir, readFile, statfs } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { formatBytes } from "../text.js";

/** How CRIU's log (strerror) says ENOSPC and EDQUOT. */
const FULL_DISK = /No space left on device|Disk quota exceeded/;

/** Below this much free space after a failed write, the disk is taken to be what failed it. */
const FULL_BYTES = 16 * 2 ** 20;

/**
 * The clear account of a capture that ran out of space, or undefined when `err` was something else: ENOSPC or
 * EDQUOT from stasis's own writes (E_NO_SPACE), or CRIU's dump failing while the disk under `stagingDir` is full
 * (CRIU's own log says "No space left on device" only when it could still write it, often on that same disk). It
 * says how much the snapshot had written when the disk filled and how much is free: the least a capture needs.
 */
export async function outOfSpace(
  err: StasisError,
  stagingDir: string,
  home: string,
  pids: number[] = [],
): Promise<StasisError | undefined> {
  const free = await freeBytes(stagingDir).catch(() => undefined);
  if (err.code !== "E_NO_SPACE") {
    if (err.code !== "E_CRIU_DUMP") return undefined;
    const logPath = typeof err.details?.logPath === "string" ? err.details.logPath : undefined;
    const log = logPath ? await readFile(logPath, "utf8").catch(() => "") : "";
    const said = FULL_DISK.test(log) || FULL_DISK.test(err.message);
    if (!said && !(free !== undefined && free < FULL_BYTES)) return undefined;
  }
  const written = await bytesUnder(stagingDir);
  // The server's resident memory: about what CRIU's images of it take (the engine's weights dump comes on top).
  const memory = pids.length > 0 ? await residentBytes(pids) : 0;
  return new StasisError(
    "E_NO_SPACE",
    `the store at ${home} ran out of space: the snapshot had written ${formatBytes(written)} when the disk filled` +
      `${free !== undefined ? ` (${formatBytes(free)} free then)` : ""}; it needs ` +
      (memory > written ? `about ${formatBytes(memory)} (the server's memory)` : "more than that"),
    {
      hint: "free space there or point STASIS_HOME at a larger disk: a snapshot takes the server's memory and weights",
      cause: err,
      details: { home, writtenBytes: written, freeBytes: free, serverMemoryBytes: memory || undefined, ...err.details },
    },
  );
}

/** Bytes free to root under `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bfree * s.bsize;
}

/** The bytes of every file under `dir` (symlinks not followed); 0 for a folder that is gone. */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await lstat(p).catch(() => undefined))?.size ?? 0;
    }
  };
  await walk(dir);
  return total;
}

/** The resident memory of `pids` (Rss of /proc/PID/smaps_rollup), bytes; processes gone count 0. */
export async function residentBytes(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
    total += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
  }
  return total;
}
