import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { listeners, localEnd, socketOwner, tcpSockets, TCP_STATE, type Listener } from "./net.js";
import { readStat } from "./tree.js";

/**
 * A restored server listens where it was captured: CRIU brings its listening sockets back at the same address
 * and port, and binds them even where another socket already listens there (its repair mode forces the bind).
 * Two instances of one snapshot on one host would then share the port, and a restore's canary could be answered
 * by the other one. So a restore whose server's port is taken is refused before anything starts. Several URLs (the
 * server's and each listener's) are checked against one read of the kernel's TCP tables (`read`, or one now), in the
 * order given: each read of /proc/net/tcp walks the kernel's whole socket hash.
 */
export async function refuseTakenAddress(
  urls: string | string[],
  read: Promise<Listener[]> = listeners(),
): Promise<void> {
  const wanted = [urls].flat().map((url) => {
    const u = new URL(url);
    return { u, port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
  });
  const listening = await read;
  for (const { u, port } of wanted) {
    const taken = listening.find((l) => l.port === port);
    if (!taken) continue;
    const owner = await socketOwner(taken.inode);
    const comm = owner === undefined ? undefined : (await readStat(owner))?.comm;
    throw new StasisError(
      "E_ADDRESS_IN_USE",
      `port ${port} is taken: ${taken.address}:${port} is listening${owner === undefined ? "" : ` (pid ${owner}${comm ? `, ${comm}` : ""})`}, and the restored server would listen at ${u.host} too`,
      {
        hint: "stop what listens there (`stasis ps` lists the servers stasis runs, `stasis stop ID` stops one), or restore on another machine: a restored server keeps the address it was captured with",
        details: { port, address: taken.address, ...(owner === undefined ? {} : { pid: owner }) },
      },
    );
  }
}

/**
 * TIME_WAIT sockets on the snapshot's listening addresses. A server stopped moments ago (an original captured with
 * --leave-running) leaves the connections it closed there for up to 60 s, and CRIU cannot bind the restored listener
 * while they are ("Address already in use"), unless they came from a socket with SO_REUSEADDR: those of a restored
 * instance do not stand in the way, so this matters only once a restore has failed on it.
 */
export async function timeWaitOn(listeners: string[]): Promise<number> {
  if (listeners.length === 0) return 0;
  const wanted = new Set(listeners);
  return (await tcpSockets()).filter((s) => s.state === TCP_STATE.TIME_WAIT && wanted.has(localEnd(s))).length;
}

/** Waits, as the phase "time-wait", until no TIME_WAIT socket is left on `listeners` (at most `maxMs`). */
export async function waitForTimeWait(
  listeners: string[],
  events: Events,
  opts: { signal?: AbortSignal; maxMs?: number } = {},
): Promise<void> {
  const n = await timeWaitOn(listeners);
  if (n === 0) return;
  events.log(
    `${n} connection(s) a stopped server closed are in TIME_WAIT on the snapshot's listening ports; waiting for the kernel to free them (up to 60 s), then restoring again`,
  );
  const started = Date.now();
  await events.phase("time-wait", async () => {
    while (
      (await timeWaitOn(listeners)) > 0 &&
      Date.now() - started < (opts.maxMs ?? 65_000) &&
      !opts.signal?.aborted
    ) {
      await new Promise((r) => setTimeout(r, 250));
    }
  });
}
