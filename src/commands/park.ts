import { callDaemon } from "../serve/client.js";
import type { ParkedView } from "../serve/protocol.js";

export interface ParkOptions {
  /** The snapshot to keep parked. */
  name: string;
  /** How many to keep parked (0: none, ending those there are). */
  count: number;
  socket?: string;
}

/**
 * Has the running `stasis serve` keep `count` instances of snapshot `name` parked: restored up to, not including,
 * the GPU, their trees stopped (docs/parking.md). Answers once they are, with the snapshot's parked instances.
 *
 * @example
 *   const { parked } = await park({ name: "llama", count: 1 });
 */
export async function park(opts: ParkOptions): Promise<{ parked: ParkedView[] }> {
  return callDaemon("/v1/park", { name: opts.name, count: opts.count }, "stasis park", opts);
}
