import { StasisError } from "../errors.js";
import { listenersOn, socketOwner } from "../proc/net.js";
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
