import { join } from "node:path";
import { knobValue } from "./config/config.js";

/**
 * Where stasis keeps its state: `STASIS_HOME` (default /var/lib/stasis; `Config.home`). Read here each time rather
 * than passed down: every part of stasis, and a daemon and its clients alike, must agree on one store.
 *   snapshots/<name>/      one folder per snapshot (manifest.json, images/, logs/, ...)
 *   snapshots/.staging-*   captures in progress; never listed, removed when a capture fails
 *   instances/<id>/        one folder per running instance (instance.json, stdout.log, stderr.log, criu logs)
 *   tools/                 CRIU built by set-up, when the system has none that is new enough
 *   stasisd.sock           `stasis serve`'s socket, while it runs
 */
export function stasisHome(env: NodeJS.ProcessEnv = process.env): string {
  return knobValue("home", env);
}

export const paths = {
  snapshots: (home = stasisHome()) => join(home, "snapshots"),
  snapshot: (name: string, home = stasisHome()) => join(home, "snapshots", name),
  instances: (home = stasisHome()) => join(home, "instances"),
  instance: (id: string, home = stasisHome()) => join(home, "instances", id),
  tools: (home = stasisHome()) => join(home, "tools"),
  daemonSocket: (home = stasisHome()) => join(home, "stasisd.sock"),
};
