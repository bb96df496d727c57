import { findInstance, listInstances, stopInstance } from "../instances/instances.js";
import { StasisError } from "../errors.js";

/** Stops instances (their whole process trees): SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(opts: {
  ids: string[];
  all: boolean;
  graceMs: number;
}): Promise<{ id: string; result: string }[]> {
  checkStopArgs(opts);
  const targets = opts.all ? await listInstances() : await Promise.all(opts.ids.map((id) => findInstance(id)));
  const out: { id: string; result: string }[] = [];
  for (const inst of targets) out.push({ id: inst.id, result: await stopInstance(inst, opts.graceMs) });
  return out;
}

/** Something to stop must be named (or --all). */
export function checkStopArgs(opts: { ids: string[]; all: boolean }): void {
  if (!opts.all && opts.ids.length === 0) throw new StasisError("E_USAGE", "name the instances to stop, or pass --all", { hint: "`stasis ps` lists them" });
}
