import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { listenersOn, socketOwner, tcpSockets, TCP_STATE } from "../proc/net.js";
import { readStat } from "../proc/tree.js";

/**
 * A restored server listens where it was captured: CRIU brings its listening sockets back at the same address
 * and port, and binds them even where another socket already listens there (its repair mode forces the bind).
 * Two instances of one snapshot on one host would then share the port, and a restore's canary could be answered
 * by the other one. So a restore whose server's port is taken is refused before anything starts.
 */
export async function refuseTakenAddress(url: string): Promise<void> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const [taken] = await listenersOn(port);
  if (!taken) return;
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

/**
 * The snapshot's connections that are in TIME_WAIT on this host: an original captured with --leave-running and
 * stopped moments ago closed them, and the kernel keeps each such end for up to 60 s, during which CRIU cannot bind
 * the restored one ("Address already in use"). Waits until they are gone (at most `maxMs`), saying so; a restore
 * that still finds one then fails in CRIU with its own error.
 */
export async function waitForClosedConnections(
  connections: { local: string; remote: string }[],
  events: Events,
  opts: { signal?: AbortSignal; maxMs?: number; pollMs?: number } = {},
): Promise<number> {
  if (connections.length === 0) return 0;
  const wanted = new Set(connections.map((c) => `${c.local} ${c.remote}`));
  const lingering = async () => (await tcpSockets()).filter((s) => s.state === TCP_STATE.TIME_WAIT && wanted.has(`${s.local} ${s.remote}`)).length;
  let n = await lingering();
  if (n === 0) return 0;
  events.log(`${n} of the snapshot's TCP connections are in TIME_WAIT here (its original closed them moments ago); waiting for the kernel to free them (up to 60 s)`);
  const started = Date.now();
  await events.phase("time-wait", async () => {
    while (n > 0 && Date.now() - started < (opts.maxMs ?? 65_000) && !opts.signal?.aborted) {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
      n = await lingering();
    }
  });
  return Date.now() - started;
}
