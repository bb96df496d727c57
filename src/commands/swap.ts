import type { Events } from "../events.js";
import { noDaemonFor, swapViaDaemon, type DaemonAt } from "../serve/client.js";
import type { SwapAnswer, SwapRequest } from "../serve/protocol.js";

/**
 * Has the running `stasis serve` hand the GPU from serving instance `req.off` to snapshot `req.name`: the instance
 * hibernated, the snapshot restored (a take of its parked or hibernated instance where the daemon holds one), the
 * restore begun as soon as the instance's engine sleeps (docs/parking.md). The restore's events are replayed into
 * `events`.
 *
 * @example
 *   const r = await swap({ off: "3f2a", name: "qwen", ...restoreDefaults }, events);
 *   r.readyMs; // from the request to "qwen" serving, its canary matched
 */
export async function swap(req: SwapRequest, events: Events, opts: DaemonAt = {}): Promise<SwapAnswer> {
  const answer = await swapViaDaemon(req, events, opts);
  if (!answer) throw noDaemonFor("stasis swap", opts);
  return answer;
}
