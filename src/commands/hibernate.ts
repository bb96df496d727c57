import { callDaemon } from "../serve/client.js";
import type { Hibernated } from "../serve/protocol.js";

/**
 * Has the running `stasis serve` take serving instance `id` off the GPU and keep it parked (its engine asleep, its
 * GPU state checkpointed, its tree stopped): the next restore of its snapshot wakes it (docs/parking.md).
 *
 * @example
 *   const { parked, phases } = await hibernate({ id: "3f2a" }); // phases: engine-sleep, cuda-checkpoint, ...
 */
export async function hibernate(opts: { id: string; socket?: string }): Promise<Hibernated> {
  return callDaemon("/v1/hibernate", { id: opts.id }, "stasis hibernate", opts);
}
