import { readdirSync, readFileSync } from "node:fs";
import { readFile, readdir, readlink } from "node:fs/promises";

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

/**
 * The children of `pid` (all its threads' children), from /proc. Read synchronously: an inference server's processes
 * have tens to hundreds of threads, a restore waits for its tree before the CUDA restore, and these files answer from
 * memory, where each asynchronous read costs four trips through libuv's thread pool (5 processes of 81 threads: 30-50
 * ms read asynchronously, even all at once, ~4 ms synchronously, on the development machine).
 */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const tid of readdirQuiet(`/proc/${pid}/task`)) {
    const text = readQuiet(`/proc/${pid}/task/${tid}/children`);
    for (const k of text.split(/\s+/)) if (k) kids.push(Number(k));
  }
  return kids;
}

function readdirQuiet(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return []; // the process is gone
  }
}

function readQuiet(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return ""; // the thread is gone
  }
}

/** Every process in the tree rooted at `root`, root first, parents before children. */
export async function processTree(root: number): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const stat = await readStat(pid);
    if (!stat) continue;
    out.push({ pid, ppid: stat.ppid, comm: stat.comm });
    queue.push(...childrenOf(pid));
  }
  return out;
}

/** Fields of /proc/<pid>/stat; `comm` may hold spaces and parentheses, so parse from the last ')'. */
export async function readStat(
  pid: number,
): Promise<{ comm: string; state: string; ppid: number; startTime: number } | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!text) return undefined;
  return parseStat(text);
}

export function parseStat(text: string): { comm: string; state: string; ppid: number; startTime: number } {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const comm = text.slice(open + 1, close);
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); starttime is field 22.
  return { comm, state: rest[0]!, ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

/** A process's open fds with their targets ("/dev/null", "socket:[123]", "anon_inode:[io_uring]", ...). */
export async function openFds(pid: number): Promise<{ fd: number; target: string }[]> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const out: { fd: number; target: string }[] = [];
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
    if (target) out.push({ fd: Number(fd), target });
  }
  return out;
}

/** The targets of a process's open fds (openFds without the numbers). */
export async function fdTargets(pid: number): Promise<string[]> {
  return (await openFds(pid)).map((t) => t.target);
}

/** True while `pid` exists and is not a zombie. */
export async function isRunning(pid: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}

/**
 * Processes one of whose arguments is `arg` exactly (a scan of /proc/*\/cmdline). A restore's unshare, CRIU and
 * lazy-pages daemon all name the instance's folder (`-W DIR`): that finds them even where the restore that started
 * them died before it could note their pids.
 */
export async function processesNaming(arg: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.split("\0").includes(arg) && (await isRunning(Number(name)))) out.push(Number(name));
  }
  return out;
}
