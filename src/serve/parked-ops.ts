/** The real work behind the daemon's parked pool (parked.ts): park, end, hibernate, and the address check. */
import { Events } from "../events.js";
import { listInstances } from "../instances/instances.js";
import { portsOf } from "../instances/claim.js";
import { refuseTakenAddress } from "../proc/address.js";
import { park, type Parked } from "../restore/park.js";
import { endParked, servable } from "../restore/take.js";
import { hibernate } from "../restore/hibernate.js";
import { openSnapshot } from "../store/store.js";
import type { RestoreDeps } from "../restore/restore.js";
import type { PoolOps } from "./parked.js";
import type { Config } from "../config/config.js";

/** `config`: the daemon's settings, which every park uses (a park is the daemon's own, asked by no one request). */
export function parkedOps(events: Events, config: Config, deps: Pick<RestoreDeps, "cudaDriver">): PoolOps {
  return {
    park: (name, signal) =>
      park({ name, verify: "auto", prefetch: "auto", signal, config }, warningsOnly(events), deps),
    end: async (p: Parked) => {
      try {
        await endParked(p);
      } finally {
        p.supervisor.release();
      }
    },
    hibernate: (id, own, opts) => hibernate(id, own ?? events, opts),
    stale: (p) =>
      servable(p).then(
        () => undefined,
        (err: Error) => err.message.replace(/^parked instance \S+ is not served: /, ""),
      ),
    addressFree,
    log: (message, level) => events.log(message, level),
  };
}

/** Whether nothing holds snapshot `name`'s addresses now: no instance of stasis's there (other than ended ones),
 *  no other process listening. */
async function addressFree(name: string): Promise<boolean> {
  const m = (await openSnapshot(name)).manifest;
  const wanted = portsOf({ url: m.server.url, listeners: m.listeners });
  for (const other of await listInstances()) {
    if (other.status === "exited") continue;
    if ([...portsOf(other)].some((p) => wanted.has(p))) return false;
  }
  try {
    await refuseTakenAddress(m.server.url);
    return true;
  } catch {
    return false;
  }
}

/** A park's own stream: its phases stay out of the daemon's log, its warnings go there. */
function warningsOnly(daemon: Events): Events {
  const own = new Events();
  own.on((e) => {
    if (e.type === "log" && e.level === "warn") daemon.log(e.message, "warn");
  });
  return own;
}
