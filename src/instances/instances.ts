import { mkdir, readdir, readFile, rm, writeFile, rename } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { paths, stasisHome } from "../home.js";
import { isRunning, readStat } from "../proc/tree.js";

/** A server stasis started (captured with --leave-running) or restored, and still tracks. */
export interface Instance {
  id: string;
  snapshot: string;
  origin: "capture" | "restore";
  /** Host pid of the tree's root (PID 1 of the instance's PID namespace). */
  pid: number;
  /** The root's start time in clock ticks since boot: a recycled pid will not match it. */
  startTime: number;
  url: string;
  createdAt: string;
  dir: string;
  stdout: string;
  stderr: string;
}

export interface InstanceStatus extends Instance {
  running: boolean;
}

export function newInstanceId(): string {
  return randomBytes(6).toString("hex");
}

/** Creates the folder an instance keeps its logs and record in. */
export async function instanceDir(id: string, home = stasisHome()): Promise<{ dir: string; stdout: string; stderr: string }> {
  const dir = paths.instance(id, home);
  await mkdir(dir, { recursive: true });
  return { dir, stdout: join(dir, "stdout.log"), stderr: join(dir, "stderr.log") };
}

export async function recordInstance(inst: Omit<Instance, "startTime">): Promise<Instance> {
  const stat = await readStat(inst.pid);
  const full: Instance = { ...inst, startTime: stat?.startTime ?? 0 };
  const file = join(inst.dir, "instance.json");
  await writeFile(file + ".tmp", JSON.stringify(full, null, 2) + "\n");
  await rename(file + ".tmp", file);
  return full;
}

async function isSame(inst: Instance): Promise<boolean> {
  const stat = await readStat(inst.pid);
  return stat !== undefined && stat.startTime === inst.startTime && (await isRunning(inst.pid));
}

export async function listInstances(home = stasisHome()): Promise<InstanceStatus[]> {
  const root = paths.instances(home);
  const ids = await readdir(root).catch(() => [] as string[]);
  const out: InstanceStatus[] = [];
  for (const id of ids.sort()) {
    const text = await readFile(join(root, id, "instance.json"), "utf8").catch(() => undefined);
    if (!text) continue;
    try {
      const inst = JSON.parse(text) as Instance;
      out.push({ ...inst, running: await isSame(inst) });
    } catch {
      continue;
    }
  }
  return out;
}

/** Finds an instance by id or unique id prefix. */
export async function findInstance(idOrPrefix: string, home = stasisHome()): Promise<InstanceStatus> {
  const all = await listInstances(home);
  const hits = all.filter((i) => i.id === idOrPrefix || i.id.startsWith(idOrPrefix));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new StasisError("E_USAGE", `"${idOrPrefix}" names ${hits.length} instances`, { hint: "give more of the id (`stasis ps` lists them)" });
  }
  throw new StasisError("E_INSTANCE_NOT_FOUND", `no instance "${idOrPrefix}"`, { hint: "`stasis ps` lists running instances" });
}

/**
 * Stops an instance's whole tree: SIGTERM to its root, then SIGKILL after `graceMs`. The root is PID 1 of the
 * instance's PID namespace, so when it dies the kernel kills every process left in the namespace.
 */
export async function killTree(pid: number, graceMs: number): Promise<"terminated" | "killed" | "gone"> {
  if (!(await isRunning(pid))) return "gone";
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return "gone";
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await isRunning(pid))) return "terminated";
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return "terminated";
  }
  for (let i = 0; i < 100 && (await isRunning(pid)); i++) await new Promise((r) => setTimeout(r, 20));
  return "killed";
}

export async function stopInstance(inst: InstanceStatus, graceMs: number): Promise<"terminated" | "killed" | "gone"> {
  const how = inst.running ? await killTree(inst.pid, graceMs) : "gone";
  await forgetInstance(inst);
  return how;
}

/** Removes the instance's record and logs. */
export async function forgetInstance(inst: Pick<Instance, "dir">): Promise<void> {
  await rm(inst.dir, { recursive: true, force: true });
}
