import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { arch, release } from "node:os";
import type { Fingerprint } from "../store/manifest.js";
import type { GpuInventory } from "../cuda/gpus.js";

/** The CPU's model name and a digest of its feature flags, from /proc/cpuinfo. */
export function cpuIdentity(cpuinfo: string): { cpuModel: string; cpuFlags: string } {
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const flags = (/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/).sort().join(" ");
  return { cpuModel: model, cpuFlags: createHash("sha256").update(flags).digest("hex").slice(0, 16) };
}

export async function machineFingerprint(opts: {
  criuVersion: string;
  gpu?: GpuInventory;
  usedGpuUuids?: string[];
  engine?: { name: string; version: string };
}): Promise<Fingerprint> {
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const fp: Fingerprint = { arch: arch(), kernel: release(), ...cpuIdentity(cpuinfo), criuVersion: opts.criuVersion };
  if (opts.gpu && opts.gpu.gpus.length > 0) {
    const used = opts.gpu.gpus.filter((g) => (opts.usedGpuUuids ?? []).includes(g.uuid));
    fp.gpu = {
      driver: opts.gpu.driver,
      cuda: opts.gpu.cuda,
      models: [...new Set(opts.gpu.gpus.map((g) => g.name))],
      used: used.map(({ index, uuid, name, memoryMiB }) => ({ index, uuid, name, memoryMiB })),
      all: opts.gpu.gpus.map(({ index, uuid, name, memoryMiB }) => ({ index, uuid, name, memoryMiB })),
    };
  }
  if (opts.engine) fp.engine = opts.engine;
  return fp;
}

export interface Mismatch {
  field: string;
  captured: string;
  here: string;
}

/**
 * What differs between a snapshot's fingerprint and this machine in ways that break a restore: CPU
 * architecture, model and features (the process may use any instruction it found at start-up), kernel (CRIU
 * restores kernel objects as this kernel's ABI has them), and for GPU snapshots the driver and the GPU model
 * (the CUDA checkpoint restores onto the same kind of GPU under the same driver only). The CRIU version may
 * differ: images are forward compatible.
 */
export function compareFingerprints(captured: Fingerprint, here: Fingerprint): Mismatch[] {
  const out: Mismatch[] = [];
  const cmp = (field: string, a: string | undefined, b: string | undefined) => {
    if ((a ?? "") !== (b ?? "")) out.push({ field, captured: a ?? "(none)", here: b ?? "(none)" });
  };
  cmp("arch", captured.arch, here.arch);
  cmp("kernel", captured.kernel, here.kernel);
  cmp("cpuModel", captured.cpuModel, here.cpuModel);
  cmp("cpuFlags", captured.cpuFlags, here.cpuFlags);
  if (captured.gpu && captured.gpu.used.length > 0) {
    cmp("gpu.driver", captured.gpu.driver, here.gpu?.driver);
    const neededModels = [...new Set(captured.gpu.used.map((g) => g.name))].sort().join(", ");
    const haveModels = (here.gpu?.models ?? []).slice().sort().join(", ");
    for (const model of new Set(captured.gpu.used.map((g) => g.name))) {
      if (!(here.gpu?.models ?? []).includes(model))
        out.push({ field: "gpu.model", captured: neededModels, here: haveModels || "(no GPU)" });
    }
  }
  return out;
}
