import { findInstance, listInstances, stopInstance, type InstanceStatus } from "../instances/instances.js";
import { StasisError } from "../errors.js";
import { knobValue } from "../config/config.js";

/** Stops instances (their whole process trees): SIGTERM, then SIGKILL after `graceMs`. A parked instance is ended
 *  through the daemon holding it, which then keeps one fewer of its snapshot parked. */
export async function stop(opts: {
  ids: string[];
  all: boolean;
  graceMs: number;
}): Promise<{ id: string; result: string }[]> {
  checkStopArgs(opts);
  const targets = opts.all ? await listInstances() : await Promise.all(opts.ids.map((id) => findInstance(id)));
  const out: { id: string; result: string }[] = [];
  for (const inst of targets) out.push({ id: inst.id, result: await stopOne(inst, opts.graceMs) });
  return out;
}

/** Something to stop must be named (or --all). */
export function checkStopArgs(opts: { ids: string[]; all: boolean }): void {
  if (!opts.all && opts.ids.length === 0)
    throw new StasisError("E_USAGE", "name the instances to stop, or pass --all", { hint: "`stasis ps` lists them" });
}

async function stopOne(inst: InstanceStatus, graceMs: number): Promise<string> {
  if (inst.status === "parked" && !knobValue("noDaemon")) {
    const { stopParkedViaDaemon } = await import("../serve/client.js");
    // A daemon that does not hold it (or none): its record is stopped here like any other.
    if (await stopParkedViaDaemon(inst.id)) return "killed";
  }
  return stopInstance(inst, graceMs);
}
