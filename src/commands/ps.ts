import { listInstances, type InstanceStatus } from "../instances/instances.js";
import { treeMemory, type TreeMemory } from "../proc/memory.js";

/** Instances stasis started, with the host memory of the running ones; `all` includes ones whose process has ended. */
export async function ps(opts: { all: boolean }): Promise<(InstanceStatus & { memory?: TreeMemory })[]> {
  const rows = (await listInstances()).filter((i) => opts.all || i.running);
  return Promise.all(rows.map(async (i) => (i.running && i.pid > 0 ? { ...i, memory: await treeMemory(i.pid) } : i)));
}
