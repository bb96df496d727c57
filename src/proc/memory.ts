import { readFile } from "node:fs/promises";
import { processTree } from "./tree.js";

/** Host memory a process tree holds: resident (RSS, shared pages counted in each process) and proportional (PSS,
 *  shared pages split between their users), summed over the tree. */
export interface TreeMemory {
  rssBytes: number;
  pssBytes: number;
}

/** The memory of the tree at `root`, from each process's /proc/PID/smaps_rollup; zeros for a tree that is gone. */
export async function treeMemory(root: number): Promise<TreeMemory> {
  const out: TreeMemory = { rssBytes: 0, pssBytes: 0 };
  for (const { pid } of await processTree(root)) {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
    const m = parseRollup(text);
    out.rssBytes += m.rssBytes;
    out.pssBytes += m.pssBytes;
  }
  return out;
}

/** The Rss and Pss lines of a smaps_rollup (in kB there). */
export function parseRollup(text: string): TreeMemory {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  return { rssBytes: kb("Rss"), pssBytes: kb("Pss") };
}
