import { StasisError } from "../errors.js";
import { processTree, readStat } from "./tree.js";

/**
 * Stops every process of the tree at `root` (SIGSTOP) and waits until each is stopped: a hibernated instance must
 * not run, nor answer, while it is parked. Processes that start meanwhile are caught by going over the tree again.
 */
export async function stopTree(root: number, timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = (await processTree(root)).map((p) => p.pid);
    for (const p of pids) signal(p, "SIGSTOP");
    const states = await Promise.all(pids.map(async (p) => (await readStat(p))?.state));
    // T: stopped; t: stopped by a tracer; Z/X/undefined: gone, nothing left to stop.
    if (states.every((s) => s === undefined || s === "T" || s === "t" || s === "Z" || s === "X")) return pids;
    if (Date.now() > deadline) {
      throw new StasisError("E_INTERNAL", `the process tree of pid ${root} did not stop within ${timeoutMs} ms`, {
        hint: "a process in uninterruptible sleep (D) stops only once its I/O is done: try again",
      });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Continues every process of the tree at `root` (SIGCONT): a parked tree's resume. */
export async function continueTree(root: number): Promise<number[]> {
  const pids = (await processTree(root)).map((p) => p.pid);
  for (const p of pids) signal(p, "SIGCONT");
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}
