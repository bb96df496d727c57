import { mkdir, readdir, readFile, rm, stat, writeFile, rename } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { StasisError } from "../errors.js";
import { paths, stasisHome } from "../home.js";
import { isRunning, processesNaming, processTree, readStat } from "../proc/tree.js";
import { removePlaced, type PlacedFile } from "../criu/kept-files.js";
import { PRIVATE_DIR, PRIVATE_FILE } from "../store/private.js";
import { removeTempFiles } from "../criu/temp-files.js";
import { lockFile } from "../store/lockfile.js";
import type { InstancePlacement } from "../netns/placement.js";

/** A server stasis started (captured with --leave-running) or restored, and still tracks. */
export interface Instance {
  id: string;
  snapshot: string;
  origin: "capture" | "restore";
  /** Host pid of the server: the tree's root. */
  pid: number;
  /** For a restored instance: host pid of its PID namespace's init (CRIU, waiting on the tree). */
  nsInit?: number;
  /** The root's start time in clock ticks since boot: a recycled pid will not match it. */
  startTime: number;
  url: string;
  createdAt: string;
  dir: string;
  stdout: string;
  stderr: string;
  /** The tree's own shared-memory files (e.g. vLLM's psm_*): put in place by its restore, or created by a captured
   *  server since its start. Removed when the instance is stopped, if still those very files. */
  placedFiles?: PlacedFile[];
  /** Set while the capture or restore that starts the instance runs; absent once it serves. The record is written
   *  before anything starts, so `ps` shows the run and `stop` (or the next restore, or the run's supervisor) can
   *  reap what it leaves should it die half-way. */
  state?: "capturing" | "restoring" | "parked";
  /** Set while parked (restore/park.ts): the tree restored or hibernated and left stopped, held by `stasis serve`
   *  (its owner) until a restore of the snapshot takes it. */
  parked?: ParkedFacts;
  /** The stasis process doing that capture or restore, or the daemon holding a parked tree (its pid and start time). */
  owner?: { pid: number; startTime: number };
  /** TCP addresses ("address:port") the instance listens on, or will once restored. */
  listeners?: string[];
  /** Files CRIU makes while it restores and removes when done (ghost files, ...: criu/temp-files.ts). */
  criuFiles?: string[];
  /** A restore into a network namespace (`--publish`, `--netns`): the namespace, the published address and its
   *  forwarder (netns/placement.ts). `url` is then the published one. */
  placement?: InstancePlacement;
}

export interface InstanceStatus extends Instance {
  /** Its server runs, or its capture or restore is at work. */
  running: boolean;
  /** serving or exited (its server ended); capturing or restoring; abandoned: the stasis process doing that capture
   *  or restore died before it finished (`stasis stop ID`, the next restore or the run's supervisor removes what it
   *  left). */
  status: "serving" | "exited" | "capturing" | "restoring" | "parked" | "abandoned";
}

/** What a parked instance's record says of it. */
export interface ParkedFacts {
  /** sha256 of the snapshot's manifest.json when it was parked: a snapshot removed or captured again since is not
   *  served from it. */
  manifestDigest: string;
  /** Parked by `stasis hibernate` from a serving instance (its engine asleep, its GPU state checkpointed), rather
   *  than restored ahead of demand. */
  hibernated?: boolean;
  parkedAt: string;
}

export function newInstanceId(): string {
  return randomBytes(6).toString("hex");
}

/**
 * Creates the folder an instance keeps its logs and record in. A capture or restore that fails leaves its folder
 * (the server's output, CRIU's logs: error hints point there) without a record; such folders are removed here
 * once they are a week old.
 */
export async function instanceDir(
  id: string,
  home = stasisHome(),
): Promise<{ dir: string; stdout: string; stderr: string }> {
  await pruneFailedRuns(home);
  const dir = paths.instance(id, home);
  await mkdir(paths.instances(home), { recursive: true, mode: PRIVATE_DIR });
  await mkdir(dir, { mode: PRIVATE_DIR }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  return { dir, stdout: join(dir, "stdout.log"), stderr: join(dir, "stderr.log") };
}

export const FAILED_RUN_LOGS_KEPT_MS = 7 * 24 * 3600 * 1000;

/** Removes the folders of failed captures and restores (no instance.json) last changed over `maxAgeMs` ago. */
export async function pruneFailedRuns(home = stasisHome(), maxAgeMs = FAILED_RUN_LOGS_KEPT_MS): Promise<string[]> {
  const root = paths.instances(home);
  const removed: string[] = [];
  for (const id of await readdir(root).catch(() => [] as string[])) {
    const dir = join(root, id);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory() || Date.now() - st.mtimeMs < maxAgeMs) continue;
    if (
      await stat(join(dir, "instance.json")).then(
        () => true,
        () => false,
      )
    )
      continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}

export async function recordInstance(inst: Omit<Instance, "startTime">): Promise<Instance> {
  const stat = await readStat(inst.pid);
  const full: Instance = { ...inst, startTime: stat?.startTime ?? 0 };
  const file = join(inst.dir, "instance.json");
  await writeFile(file + ".tmp", JSON.stringify(full, null, 2) + "\n", { mode: PRIVATE_FILE });
  await rename(file + ".tmp", file);
  return full;
}

async function isSame(inst: Pick<Instance, "pid" | "startTime">): Promise<boolean> {
  if (!(inst.pid > 0)) return false;
  const stat = await readStat(inst.pid);
  return stat !== undefined && stat.startTime === inst.startTime && (await isRunning(inst.pid));
}

/** This process as the owner of a capture or restore. */
export async function selfAsOwner(): Promise<{ pid: number; startTime: number }> {
  return { pid: process.pid, startTime: (await (selfStat ??= readStat(process.pid)))?.startTime ?? 0 };
}

/** This process's /proc stat, read once: its start time never changes. */
let selfStat: ReturnType<typeof readStat> | undefined;

async function status(inst: Instance): Promise<Pick<InstanceStatus, "running" | "status">> {
  if (!inst.state) {
    const running = await isSame(inst);
    return { running, status: running ? "serving" : "exited" };
  }
  if (inst.owner && (await isSame(inst.owner))) return { running: true, status: inst.state };
  const running = (await isSame(inst)) || (await processesNaming(inst.dir)).length > 0;
  return { running, status: "abandoned" };
}

export async function listInstances(home = stasisHome()): Promise<InstanceStatus[]> {
  const out: InstanceStatus[] = [];
  for (const inst of await readRecords(home)) out.push(await withStatus(inst));
  return out;
}

/** The instance records under `home`, by id, without looking at their processes (listInstances does). */
export async function readRecords(home = stasisHome()): Promise<Instance[]> {
  const root = paths.instances(home);
  const ids = (await readdir(root).catch(() => [] as string[])).sort();
  const texts = await Promise.all(ids.map((id) => readFile(join(root, id, "instance.json"), "utf8").catch(() => "")));
  const out: Instance[] = [];
  for (const text of texts) {
    if (!text) continue;
    try {
      out.push(JSON.parse(text) as Instance);
    } catch {
      continue;
    }
  }
  return out;
}

/** A record with what its processes say: serving, exited, at work or abandoned. */
export async function withStatus(inst: Instance): Promise<InstanceStatus> {
  return { ...inst, ...(await status(inst)) };
}

/** Finds an instance by id or unique id prefix. */
export async function findInstance(idOrPrefix: string, home = stasisHome()): Promise<InstanceStatus> {
  const all = await listInstances(home);
  const hits = all.filter((i) => i.id === idOrPrefix || i.id.startsWith(idOrPrefix));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new StasisError("E_USAGE", `"${idOrPrefix}" names ${hits.length} instances`, {
      hint: "give more of the id (`stasis ps` lists them)",
    });
  }
  throw new StasisError("E_INSTANCE_NOT_FOUND", `no instance "${idOrPrefix}"`, {
    hint: "`stasis ps` lists running instances",
  });
}

/**
 * Stops a whole tree: SIGTERM to its root (a server shuts its own children down), then after `graceMs`
 * SIGKILL to whatever of the tree is left, and to the init of its PID namespace when it has one (CRIU, for a
 * restored instance: when it dies the kernel ends everything left in the namespace).
 */
export async function killTree(
  pid: number,
  graceMs: number,
  nsInit?: number,
): Promise<"terminated" | "killed" | "gone"> {
  const tree = (await processTree(pid)).map((p) => p.pid);
  const signal = (p: number, s: NodeJS.Signals) => {
    try {
      process.kill(p, s);
    } catch {
      /* already gone */
    }
  };
  if (!(await isRunning(pid))) {
    if (nsInit !== undefined) signal(nsInit, "SIGKILL");
    return "gone";
  }
  signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  let how: "terminated" | "killed" = "terminated";
  while (await isRunning(pid)) {
    if (Date.now() > deadline) {
      how = "killed";
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const p of tree) if (await isRunning(p)) signal(p, "SIGKILL");
  if (nsInit !== undefined) signal(nsInit, "SIGKILL");
  // Done only when every process of the tree is: one still exiting holds its sockets, and a restore of the same
  // snapshot right after could not bind them (seen: 2 restores in 5 failed, "Address already in use").
  const alive = async () =>
    (await Promise.all([...tree, ...(nsInit === undefined ? [] : [nsInit])].map(isRunning))).some(Boolean);
  for (let i = 0; i < 250 && (await alive()); i++) await new Promise((r) => setTimeout(r, 20));
  return how;
}

/**
 * Runs `body` holding the lock that restores claim their addresses under (instances/claim.ts), in the store whose
 * instances folder holds `instanceDir` (or STASIS_HOME's).
 */
export async function withClaimsLock<T>(body: () => Promise<T>, home = stasisHome()): Promise<T> {
  await mkdir(join(home, "locks"), { recursive: true, mode: PRIVATE_DIR });
  const release = await lockFile(join(home, "locks", "claims.lock"), { wait: true });
  try {
    return await body();
  } finally {
    await release();
  }
}

/**
 * Stops an instance: its tree, the helpers of its restore, its files, its record and folder. An unfinished capture's
 * or restore's record is stopped under the claims lock and read again there: its supervisor and the next restore
 * (which reaps it as it claims) may both be at it, and CRIU's temporary files are removed by path, so not once
 * another restore has claimed it. `claimsHeld`: the caller holds that lock already.
 */
export async function stopInstance(
  inst: InstanceStatus,
  graceMs: number,
  opts: { claimsHeld?: boolean } = {},
): Promise<"terminated" | "killed" | "gone"> {
  if (inst.state && !opts.claimsHeld) {
    return withClaimsLock(
      async () => {
        const now = (await listInstances(dirname(dirname(inst.dir)))).find((i) => i.id === inst.id);
        return now ? stopInstance(now, graceMs, { claimsHeld: true }) : "gone";
      },
      dirname(dirname(inst.dir)),
    );
  }
  // A parked tree is stopped (SIGSTOP): it would act on SIGTERM only once continued, and continuing it would let a
  // tree whose GPU state is checkpointed run. It is killed at once; its shared-memory files are removed below.
  const grace = inst.state === "parked" ? 0 : graceMs;
  let how = (await isSame(inst)) ? await killTree(inst.pid, grace, inst.nsInit) : "gone";
  // A restore's unshare, CRIU and lazy-pages daemon name the instance's folder: ended so even where the restore died
  // before it learnt their pids (CRIU is its namespace's init: the kernel then ends the restored tree with it).
  if ((await killNaming(inst.dir)) && how === "gone") how = "killed";
  // A killed server cannot remove its shared-memory files: in /dev/shm they would hold memory until reboot. A
  // restore killed while CRIU ran leaves its temporary files: the next restore could not make its ghost files.
  await removePlaced(inst.placedFiles ?? []);
  await removeTempFiles(inst.criuFiles ?? []);
  // An unfinished capture's folder stays, as after any failed capture (capture/leftovers.ts reads its dump log).
  if (inst.state === "capturing") await dropRecord(inst);
  else await forgetInstance(inst);
  return how;
}

/**
 * SIGKILLs the processes naming `dir` in their arguments and waits (up to 5 s) until they and their trees are gone:
 * a restored server still exiting after its namespace's init holds its listener, and the restore that reaps it
 * would find the port taken.
 */
async function killNaming(dir: string): Promise<boolean> {
  const named = await processesNaming(dir);
  const pids = [...new Set((await Promise.all(named.map(processTree))).flat().map((p) => p.pid))];
  for (const p of named) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  const alive = async () => (await Promise.all(pids.map(isRunning))).some(Boolean);
  for (let i = 0; i < 250 && (await alive()); i++) await new Promise((r) => setTimeout(r, 20));
  return pids.length > 0;
}

/** Removes a record of a run that did not finish (its folder stays: the logs that error hints point to). */
export async function dropRecord(inst: Pick<Instance, "dir">): Promise<void> {
  await rm(join(inst.dir, "instance.json"), { force: true });
}

/** Removes the instance's record and logs. */
export async function forgetInstance(inst: Pick<Instance, "dir">): Promise<void> {
  await rm(inst.dir, { recursive: true, force: true });
}
