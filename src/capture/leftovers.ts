/**
 * What a capture that died (killed, or the machine's OOM killer) left behind, removed by the next command that
 * looks at the store (capture, restore, ls): its staging folder (often gigabytes of CRIU images), the server it
 * launched, and the network-lock table of its CRIU dump. Each is recorded in the staging folder's owner record
 * as the capture goes (store.ts `noteOwner`), so it is found by name, never guessed.
 */
import type { Events } from "../events.js";
import { stasisHome } from "../home.js";
import { cleanStaging, sameProcess, type StagingOwner } from "../store/store.js";
import { lockTableOfLog, removeLockTableQuietly } from "../criu/network-lock.js";
import { killTree } from "../instances/instances.js";

/** Removes dead captures' leftovers; returns the staging folders removed. */
export async function removeDeadCaptures(events?: Events, home = stasisHome()): Promise<string[]> {
  const removed = await cleanStaging(home, (owner) => releaseOwned(owner, events));
  if (removed.length > 0) events?.log(`removed what ${removed.length} dead capture(s) left: ${removed.join(", ")}`);
  return removed;
}

async function releaseOwned(owner: StagingOwner, events?: Events): Promise<void> {
  // The server must be the one launched (same start time), never a process that reused its pid.
  const server = owner.server;
  if (server && (await sameProcess(server.pid, server.startTime))) await killTree(server.pid, 2_000);
  const table = owner.criuLog ? await lockTableOfLog(owner.criuLog) : undefined;
  const err = await removeLockTableQuietly(table);
  if (err) events?.log(`could not remove the network-lock table ${table} of a dead capture: ${err.message}`, "warn");
}
