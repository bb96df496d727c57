import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
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
  const q = await run(
    "nvidia-smi",
    ["--query-gpu=index,uuid,name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"],
    {
      timeoutMs: 20_000,
    },
  ).catch(() => undefined);
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

/**
 * The driver version and the GPUs' models and UUIDs from /proc/driver/nvidia: file reads, no library
 * initialisation, so a restore can check its fingerprint in a millisecond. Memory figures are not there
 * (they come from NVML, in parallel with the restore); undefined without the NVIDIA driver.
 */
export async function gpuIdentityFromProc(root = "/proc/driver/nvidia"): Promise<GpuInventory | undefined> {
  const version = await readFile(join(root, "version"), "utf8").catch(() => undefined);
  if (version === undefined) return undefined;
  const driver = /Kernel Module(?:\s+for\s+\S+)?\s+([0-9][0-9.]*)/.exec(version)?.[1] ?? "unknown";
  const gpus: GpuState[] = [];
  for (const bus of (await readdir(join(root, "gpus")).catch(() => [] as string[])).sort()) {
    const info = await readFile(join(root, "gpus", bus, "information"), "utf8").catch(() => "");
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(info)?.[1]?.trim() ?? "";
    gpus.push({
      index: gpus.length,
      uuid: field("GPU UUID"),
      name: field("Model"),
      memoryMiB: 0,
      memoryUsedMiB: 0,
      driver,
    });
  }
  return { driver, cuda: "unknown", gpus };
}
