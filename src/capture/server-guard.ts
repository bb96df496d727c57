/**
 * A capture checks that the ready URL and the canary are answered by the tree it launched. Readiness and the
 * canary are HTTP answers from whatever listens on the ready URL's port: with another process there, a capture
 * took a server that had not even started for ready, recorded the other process's answer as its canary, and
 * committed a snapshot of a tree with no listener at all, whose restores then "succeeded".
 */
import { readFile } from "node:fs/promises";
import { StasisError } from "../errors.js";
import { listenersOn, socketOwner, type Listener } from "../proc/net.js";
import { fdTargets, processTree, readStat } from "../proc/tree.js";

/** The TCP port of a URL (its scheme's default when it names none). */
export function portOf(url: string): number {
  const u = new URL(url);
  return Number(u.port || (u.protocol === "https:" ? 443 : 80));
}

/** Before launch: refuses a ready URL whose port something already listens on, naming that process. */
export async function refusePortTaken(readyUrl: string): Promise<void> {
  const port = portOf(readyUrl);
  const [taken] = await listenersOn(port);
  if (!taken) return;
  const owner = await describeOwner(taken);
  throw new StasisError(
    "E_ADDRESS_IN_USE",
    `port ${port} of the ready URL is already taken: ${taken.address}:${port} is listening${owner.text}, ` +
      "before the server was started",
    {
      hint:
        "the capture would take that process's answers for the server's: stop it (`stasis ps` / `stasis stop ID` " +
        "for servers stasis runs), or give the server another port and --ready-url with it",
      details: { port, address: taken.address, ...owner.details },
    },
  );
}

/**
 * After ready (and again before the canary): the sockets listening on the ready URL's port must all belong to
 * the tree rooted at `rootPid`, and there must be one; otherwise the answers came from someone else.
 */
export async function refuseForeignListener(readyUrl: string, rootPid: number, when: string): Promise<void> {
  const port = portOf(readyUrl);
  const listeners = await listenersOn(port);
  const ours = await socketInodes(rootPid);
  const foreign = listeners.find((l) => !ours.has(l.inode));
  if (foreign) {
    const owner = await describeOwner(foreign);
    throw new StasisError(
      "E_WRONG_SERVER",
      `${when}, ${foreign.address}:${port} (the ready URL's port) is held by a process outside the launched ` +
        `server's tree${owner.text}`,
      {
        hint:
          "its answers are not the server's: stop that process, or give the server a free port and --ready-url " +
          "with it",
        details: { port, address: foreign.address, rootPid, ...owner.details },
      },
    );
  }
  if (listeners.length === 0) {
    throw new StasisError(
      "E_WRONG_SERVER",
      `${when}, nothing listens on port ${port} (the ready URL's) on this machine, yet it answered`,
      {
        hint: "--ready-url must name a port the launched server itself listens on here (http://127.0.0.1:PORT/...)",
        details: { port, rootPid },
      },
    );
  }
}

/** The inodes of every socket the tree rooted at `rootPid` has open. */
async function socketInodes(rootPid: number): Promise<Set<number>> {
  const inodes = new Set<number>();
  for (const { pid } of await processTree(rootPid)) {
    for (const target of await fdTargets(pid)) {
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(Number(m[1]));
    }
  }
  return inodes;
}

async function describeOwner(l: Listener): Promise<{ text: string; details: Record<string, unknown> }> {
  const pid = await socketOwner(l.inode);
  if (pid === undefined) return { text: "", details: {} };
  const comm = (await readStat(pid))?.comm;
  const raw = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  const cmdline = raw.split("\0").filter(Boolean).join(" ");
  const shown = cmdline.length > 120 ? `${cmdline.slice(0, 120)}...` : cmdline;
  const text = ` (pid ${pid}${comm ? `, ${comm}` : ""}${shown ? `: ${shown}` : ""})`;
  return { text, details: { pid, comm, cmdline } };
}
