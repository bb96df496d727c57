import { run, check } from "../proc/run.js";
import { dropPageCache } from "./system.js";

export interface DiskRate {
  bytes: number;
  ms: number;
  gbps: number;
  streams: number;
  how: string;
}

export interface Slice {
  path: string;
  offset: number;
  length: number;
}

/**
 * `files` cut into about `streams` slices of equal size, in file order (a file may span several slices, a slice
 * never spans two files). Files under a quarter of a slice are not cut but listed in `small`: one more stream
 * reads them all, so that a snapshot's dozens of small CRIU images do not each cost a process.
 */
export function slices(files: { path: string; size: number }[], streams: number): { slices: Slice[]; small: string[] } {
  const total = files.reduce((a, f) => a + f.size, 0);
  const want = Math.max(1, Math.ceil(total / Math.max(1, streams)));
  const out: Slice[] = [];
  const small: string[] = [];
  for (const f of files) {
    if (f.size > 0 && f.size < want / 4) {
      small.push(f.path);
      continue;
    }
    for (let at = 0; at < f.size; at += want)
      out.push({ path: f.path, offset: at, length: Math.min(want, f.size - at) });
  }
  return { slices: out, small };
}

/**
 * The disk's parallel read rate for these files, the way the page-cache benchmark's best case measures it: page
 * cache dropped, then `dd` of every slice at once (8 MiB blocks), timed over the whole set. It is the yardstick
 * for restore-cold: the bytes a restore reads before its first token, divided by this rate, is the fastest any
 * restore could be.
 */
export async function diskRate(files: { path: string; size: number }[], streams = 16): Promise<DiskRate> {
  const { slices: parts, small } = slices(files, streams);
  await dropPageCache();
  const started = performance.now();
  const outs = await Promise.all([
    ...parts.map((s) =>
      run(
        "dd",
        [
          `if=${s.path}`,
          "of=/dev/null",
          "bs=8M",
          "iflag=skip_bytes,count_bytes",
          `skip=${s.offset}`,
          `count=${s.length}`,
        ],
        { timeoutMs: 600_000 },
      ),
    ),
    ...(small.length > 0 ? [run("sh", ["-c", 'cat "$@" > /dev/null', "sh", ...small], { timeoutMs: 600_000 })] : []),
  ]);
  const ms = performance.now() - started;
  outs.forEach((o) => check(o, "E_IO", "reading the snapshot for the disk's read rate"));
  const bytes = files.reduce((a, f) => a + f.size, 0);
  const n = parts.length + (small.length > 0 ? 1 : 0);
  return {
    bytes,
    ms,
    gbps: bytes / ms / 1e6,
    streams: n,
    how: `page cache dropped, ${n} parallel dd streams, 8 MiB blocks`,
  };
}
