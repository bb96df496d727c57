import { WeightsKeeper, type StageJob } from "../engines/weights-stager.js";
import type { StagedWeights } from "../engines/weights-stager.js";

/**
 * `stasis serve --pin-weights`: one weights keeper per engine interpreter (and import path), started by the first
 * restore that stages with it and kept until the daemon stops. Asked to release (POST /v1/weights/release:
 * `stasis bench` does so before a restore-cold, which must find no weights in memory), the keepers free their pinned
 * weights and stay up, holding none, with their CUDA contexts: the next restore reads the weights file again but
 * its keeper starts reading at once (a fresh keeper, a Python process and cuInit loaded from a cold disk, started
 * reading ~1.9 s after the request on the H100). A keeper that died is replaced by the next restore; one that does
 * not answer a release is ended.
 */
export function weightsKeepers(
  log: (message: string, level: "info" | "warn") => void,
  start: (job: StageJob) => WeightsKeeper = (job) => WeightsKeeper.start(job.info, log),
): {
  stage: (job: StageJob) => StagedWeights;
  /** Frees every keeper's pinned weights; resolves with how many keepers held any once they all have answered. */
  release: () => Promise<number>;
  /** Ends every keeper (their pinned weights and CUDA contexts go with them) once their processes have ended: the
   *  daemon does so as it stops. */
  close: () => Promise<void>;
} {
  const keepers = new Map<string, WeightsKeeper>();
  return {
    stage(job) {
      const key = `${job.info.python}\0${job.info.path}`;
      let keeper = keepers.get(key);
      if (!keeper || !keeper.alive()) {
        keeper = start(job);
        keepers.set(key, keeper);
      }
      return keeper.stage(job);
    },
    async release() {
      const freed = await Promise.all(
        [...keepers].map(async ([key, keeper]) => {
          try {
            return await keeper.release();
          } catch (err) {
            log(`${(err as Error).message}; ending it`, "warn");
            keepers.delete(key);
            await keeper.close();
            return 1;
          }
        }),
      );
      return freed.filter((n) => n > 0).length;
    },
    async close() {
      const ending = [...keepers.values()].map((k) => k.close());
      keepers.clear();
      await Promise.all(ending);
    },
  };
}
