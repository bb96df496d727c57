import { run } from "../proc/run.js";
import type { GpuInfo } from "../store/manifest.js";

export interface GpuState extends GpuInfo {
  memoryUsedMiB: number;
  driver: string;
}

export interface GpuInventory {
  driver: string;
  cuda: string;
  gpus: GpuState[];
}

/** The GPUs of this machine through nvidia-smi; undefined where there is no NVIDIA driver. */
export async function gpuInventory(): Promise<GpuInventory | undefined> {
  const q = await run("nvidia-smi", ["--query-gpu=index,uuid,name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"], {
    timeoutMs: 20_000,
  }).catch(() => undefined);
  if (!q || q.code !== 0) return undefined;
  const gpus = parseGpuCsv(q.stdout);
  const head = await run("nvidia-smi", [], { timeoutMs: 20_000 }).catch(() => undefined);
  const cuda = /CUDA Version:\s*([\d.]+)/.exec(head?.stdout ?? "")?.[1] ?? "unknown";
  return { driver: gpus[0]?.driver ?? "unknown", cuda, gpus };
}

export function parseGpuCsv(text: string): GpuState[] {
  return text
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line) => {
      const [index, uuid, name, total, used, driver] = line.split(",").map((s) => s.trim());
      return {
        index: Number(index),
        uuid: uuid ?? "",
        name: name ?? "",
        memoryMiB: Number(total),
        memoryUsedMiB: Number(used),
        driver: driver ?? "",
      };
    });
}
