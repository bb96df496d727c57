import { access, readFile, readdir, writeFile } from "node:fs/promises";
import { run } from "../proc/run.js";

/**
 * Empties the page cache, so a "cold" case reads from disk. This is a one-off action on the host (not a
 * setting): `sync; echo 3 > /proc/sys/vm/drop_caches`. The benchmark says so in its output.
 */
export async function dropPageCache(): Promise<void> {
  await run("sync", [], { timeoutMs: 120_000 });
  await writeFile("/proc/sys/vm/drop_caches", "3\n");
}

/** The variables that move an engine's compile caches (vLLM, torch.compile, Triton, CUDA, FlashInfer). */
export const COMPILE_CACHE_VARS = [
  "VLLM_CACHE_ROOT",
  "TORCHINDUCTOR_CACHE_DIR",
  "TRITON_CACHE_DIR",
  "CUDA_CACHE_PATH",
  "FLASHINFER_WORKSPACE_BASE",
  "XDG_CACHE_HOME",
] as const;

/** Environment that points every compile cache under `dir` (empty dir: a cold start; filled: a warm one). */
export function cacheEnv(dir: string): Record<string, string> {
  return Object.fromEntries(COMPILE_CACHE_VARS.map((v) => [v, `${dir}/${v.toLowerCase()}`]));
}

/** The disks of this machine: block devices with a device behind them (/sys/block/NAME/device), so not loop,
 *  zram or device-mapper devices, which would count reads twice. */
async function diskNames(): Promise<string[]> {
  const names = await readdir("/sys/block").catch(() => [] as string[]);
  const disks: string[] = [];
  for (const n of names)
    if (
      await access(`/sys/block/${n}/device`).then(
        () => true,
        () => false,
      )
    )
      disks.push(n);
  return disks;
}

/**
 * Bytes read from the machine's disks so far: the sectors read of every disk (diskNames) in /proc/diskstats.
 * Undefined where there is none to read. A cold case's difference of two readings is what it read from disk,
 * whoever read it (the snapshot, the engine's libraries, stasis and CRIU themselves, anything else).
 */
export async function diskBytesRead(): Promise<number | undefined> {
  return sectorsRead(await readFile("/proc/diskstats", "utf8").catch(() => ""), await diskNames());
}

/** What the machine's disks have read since `before` (a diskBytesRead reading; undefined: nothing to measure). */
export async function diskReadSince(before: number | undefined): Promise<number | undefined> {
  return before === undefined ? undefined : ((await diskBytesRead()) ?? before) - before;
}

/** The read counters of the devices `disks` in /proc/diskstats text, summed: bytes (field 6: sectors read, 512
 *  bytes each), reads completed (field 4) and I/Os in flight at that instant (field 12). */
export function diskCounters(
  diskstats: string,
  disks: string[],
): { bytes: number; reads: number; inFlight: number } | undefined {
  let c: { bytes: number; reads: number; inFlight: number } | undefined;
  for (const line of diskstats.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 12 || !disks.includes(f[2]!)) continue;
    c ??= { bytes: 0, reads: 0, inFlight: 0 };
    c.bytes += Number(f[5]) * 512;
    c.reads += Number(f[3]);
    c.inFlight += Number(f[11]);
  }
  return c;
}

/** The bytes read by the devices `disks` in /proc/diskstats text. */
export function sectorsRead(diskstats: string, disks: string[]): number | undefined {
  return diskCounters(diskstats, disks)?.bytes;
}

/** One reading of the disks while a case runs: ms since the sampler started, bytes and reads since then, and
 *  the I/Os in flight at that moment. */
export interface DiskSample {
  ms: number;
  bytes: number;
  reads: number;
  inFlight: number;
}

/**
 * Reads /proc/diskstats every `intervalMs` until `stop()`, which takes a last reading and returns them all: what
 * the disks did during a cold case, moment by moment (is the disk busy, with how many reads of what size). Where
 * the machine has no disk to read, `stop()` returns no samples.
 */
export function sampleDisk(intervalMs = 100): { stop(): Promise<DiskSample[]> } {
  const samples: DiskSample[] = [];
  const started = performance.now();
  const disks = diskNames();
  let base: { bytes: number; reads: number } | undefined;
  let pending: Promise<void> = Promise.resolve();
  const take = () =>
    (pending = pending.then(async () => {
      const ms = performance.now() - started;
      const c = diskCounters(await readFile("/proc/diskstats", "utf8").catch(() => ""), await disks);
      if (!c) return;
      base ??= c;
      samples.push({
        ms: Math.round(ms * 10) / 10,
        bytes: c.bytes - base.bytes,
        reads: c.reads - base.reads,
        inFlight: c.inFlight,
      });
    }));
  void take();
  const timer = setInterval(() => void take(), intervalMs);
  let stopped: Promise<DiskSample[]> | undefined;
  return {
    stop() {
      clearInterval(timer);
      stopped ??= take().then(() => samples); // a second stop() returns the same samples, nothing added
      return stopped;
    },
  };
}
