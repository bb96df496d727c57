import { listInstances, type InstanceStatus } from "../instances/instances.js";

/** Instances stasis started; `all` includes ones whose process has ended. */
export async function ps(opts: { all: boolean }): Promise<InstanceStatus[]> {
  return (await listInstances()).filter((i) => opts.all || i.running);
}
