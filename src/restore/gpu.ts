import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { CudaDriver } from "../cuda/driver.js";
import type { GpuInventory, GpuState } from "../cuda/gpus.js";
import { nsPidOf, restoreAll } from "../cuda/tree.js";
import { processTree } from "../proc/tree.js";
import type { Manifest } from "../store/manifest.js";

/** Headroom a restored process needs beyond the memory it had at capture (contexts, module reloads). */
export const MARGIN_BYTES = 512 * 1024 * 1024;

export interface GpuRestore {
  /** Restores and unlocks the CUDA processes of the tree restored at host pid `root`. */
  restore(root: number, events: Events): Promise<void>;
}

/**
 * Picks the GPU for each captured GPU: the ones named by --gpu, the same UUID, or the same index and model.
 * `--gpu` names one GPU per captured GPU, comma-separated, in the order of the captured GPUs' indexes (a
 * tensor-parallel server's rank r on the r-th): `--gpu 2,3` puts a snapshot of GPUs 0 and 1 on 2 and 3.
 */
export function planGpus(
  captured: { uuid: string; name: string; index: number }[],
  here: GpuState[],
  target: string | undefined,
): { from: string; to: GpuState }[] {
  if (target === undefined) {
    return captured.map((c) => {
      const to = here.find((g) => g.uuid === c.uuid) ?? here.find((g) => g.index === c.index && g.name === c.name);
      if (!to) {
        throw new StasisError("E_GPU_UNAVAILABLE", `no ${c.name} here to restore GPU ${c.index} (${c.uuid}) onto`, {
          hint: "restore on a machine with the same GPUs, or pick them with --gpu",
        });
      }
      return { from: c.uuid, to };
    });
  }
  const targets = parseGpuList(target);
  const ordered = [...captured].sort((a, b) => a.index - b.index);
  if (targets.length !== ordered.length) {
    const used = ordered.map((c) => c.index).join(",");
    throw new StasisError(
      "E_USAGE",
      `--gpu names ${targets.length} GPU${targets.length === 1 ? "" : "s"}, but the snapshot used ${ordered.length} ` +
        `(${used})`,
      {
        hint:
          `name one GPU per captured GPU, comma-separated in the order ${used} ` +
          `(e.g. --gpu ${exampleList(ordered)})`,
      },
    );
  }
  const plan = ordered.map((c, i) => {
    const name = targets[i]!;
    const to = here.find((g) => g.uuid === name || String(g.index) === name);
    if (!to) {
      throw new StasisError(
        "E_GPU_UNAVAILABLE",
        `no GPU "${name}" here (GPUs: ${here.map((g) => `${g.index} ${g.uuid}`).join(", ") || "none"})`,
        { hint: "name a GPU by its index or UUID as nvidia-smi lists it" },
      );
    }
    if (to.name !== c.name) {
      throw new StasisError(
        "E_GPU_UNAVAILABLE",
        `GPU ${name} is a ${to.name}; the snapshot's GPU ${c.index} was a ${c.name}`,
        { hint: "the CUDA checkpoint restores onto the same GPU model only" },
      );
    }
    return { from: c.uuid, to };
  });
  const twice = plan.find((p, i) => plan.findIndex((q) => q.to.uuid === p.to.uuid) !== i);
  if (twice) {
    throw new StasisError("E_USAGE", `--gpu ${target} names GPU ${twice.to.index} (${twice.to.uuid}) twice`, {
      hint: "each captured GPU needs a GPU of its own",
    });
  }
  return plan;
}

/** `--gpu`'s value: GPU indexes or UUIDs, comma-separated, none empty. */
function parseGpuList(value: string): string[] {
  const names = value.split(",").map((s) => s.trim());
  if (names.some((n) => n === "")) {
    throw new StasisError("E_USAGE", `--gpu ${JSON.stringify(value)} has an empty entry`, {
      hint: "name GPUs by index or UUID, comma-separated: --gpu 1 or --gpu 2,3",
    });
  }
  return names;
}

/** An example of a full list: the captured indexes reversed (each rank on the other's GPU). */
function exampleList(captured: { index: number }[]): string {
  return captured
    .map((c) => c.index)
    .reverse()
    .join(",");
}

/**
 * The GPU UUID pairs for cuCheckpointProcessRestore: empty when every GPU goes back to itself; otherwise a
 * complete one-to-one map over all the GPUs the process saw at capture (the driver refuses a partial map with
 * CUDA_ERROR_INVALID_VALUE): the planned moves, the GPUs they displace moved into the places freed, and the
 * rest onto themselves (or onto the GPU of the same index, on another machine).
 */
export function gpuPairs(
  capturedAll: { uuid: string; index: number }[],
  here: { uuid: string; index: number }[],
  plan: { from: string; to: { uuid: string } }[],
): { from: string; to: string }[] {
  const map = new Map<string, string>();
  for (const c of capturedAll) {
    const same = here.find((h) => h.uuid === c.uuid) ?? here.find((h) => h.index === c.index);
    if (same) map.set(c.uuid, same.uuid);
  }
  for (const p of plan) {
    const displaced = [...map.entries()].find(([, to]) => to === p.to.uuid)?.[0];
    const freed = map.get(p.from);
    map.set(p.from, p.to.uuid);
    if (displaced !== undefined && displaced !== p.from && freed !== undefined) map.set(displaced, freed);
  }
  const pairs = [...map.entries()].map(([from, to]) => ({ from, to }));
  return pairs.every((p) => p.from === p.to) ? [] : pairs;
}

/**
 * Plans the GPU side of a restore, alongside CRIU: picks the target GPUs and checks they have the memory.
 * The driver (the CUDA worker) belongs to the caller, which closes it. A restore that runs out of GPU
 * memory can leave the process stuck in the driver, so this refuses up front.
 */
export async function prepareGpuRestore(
  m: Manifest,
  target: string | undefined,
  driver: CudaDriver | undefined,
  inventory: GpuInventory | undefined,
): Promise<GpuRestore | undefined> {
  if (!m.gpu || m.gpu.processes.length === 0 || !driver) return undefined;
  const gpuInfo = m.gpu;
  const captured = m.fingerprint.gpu?.used ?? [];
  const plan = planGpus(captured, inventory?.gpus ?? [], target);
  for (const p of plan) {
    const need =
      gpuInfo.processes.filter((x) => x.gpuUuids.includes(p.from)).reduce((a, x) => a + x.gpuBytes, 0) + MARGIN_BYTES;
    const free = (p.to.memoryMiB - p.to.memoryUsedMiB) * 1024 * 1024;
    if (free < need) {
      throw new StasisError(
        "E_GPU_MEMORY",
        `GPU ${p.to.index} (${p.to.uuid}) has ${(free / 2 ** 30).toFixed(1)} GiB free; restoring needs ${(need / 2 ** 30).toFixed(1)} GiB`,
        {
          hint: "stop other instances on that GPU (`stasis ps`, `stasis stop`) or restore onto another one with --gpu",
        },
      );
    }
  }
  const pairs = gpuPairs(m.fingerprint.gpu?.all ?? captured, inventory?.gpus ?? [], plan);
  return {
    async restore(root, ev) {
      const tree = await processTree(root);
      const byNsPid = new Map<number, number>();
      for (const t of tree) byNsPid.set(await nsPidOf(t.pid), t.pid);
      const procs = gpuInfo.processes.map((p) => {
        const pid = byNsPid.get(p.nsPid);
        if (pid === undefined)
          throw new StasisError("E_CUDA", `the restored tree has no process ${p.nsPid} (a CUDA process at capture)`);
        return { pid, gpuBytes: p.gpuBytes };
      });
      await restoreAll(driver, procs, ev, pairs.length ? pairs : undefined);
    },
  };
}
