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

/**
 * Bytes read from the machine's disks so far: the sectors read of every block device with a device behind it
 * (/sys/block/NAME/device: disks, not loop, zram or device-mapper devices, which would count reads twice), from
 * /proc/diskstats. Undefined where there is none to read. A cold case's difference of two readings is what it read
 * from disk, whoever read it (the snapshot, the engine's libraries, stasis and CRIU themselves, anything else).
 */
export async function diskBytesRead(): Promise<number | undefined> {
  const text = await readFile("/proc/diskstats", "utf8").catch(() => "");
  const names = await readdir("/sys/block").catch(() => [] as string[]);
  const disks: string[] = [];
  for (const n of names) if (await access(`/sys/block/${n}/device`).then(() => true, () => false)) disks.push(n);
  return sectorsRead(text, disks);
}

/** What the machine's disks have read since `before` (a diskBytesRead reading; undefined: nothing to measure). */
export async function diskReadSince(before: number | undefined): Promise<number | undefined> {
  return before === undefined ? undefined : ((await diskBytesRead()) ?? before) - before;
}

/** The bytes read by the devices `disks` in /proc/diskstats text (field 6: sectors read, 512 bytes each). */
export function sectorsRead(diskstats: string, disks: string[]): number | undefined {
  let bytes: number | undefined;
  for (const line of diskstats.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !disks.includes(f[2]!)) continue;
    bytes = (bytes ?? 0) + Number(f[5]) * 512;
  }
  return bytes;
}
