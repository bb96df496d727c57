import { WeightsKeeper, type StageJob } from "../engines/weights-stager.js";
import type { StagedWeights } from "../engines/weights-stager.js";

/**
 * `stasis serve --pin-weights`: one weights keeper per engine interpreter (and import path), started by the first
 * restore that stages with it and kept until the daemon stops or is asked to release them (POST /v1/weights/release:
 * `stasis bench` does so before a restore-cold, which must find no weights in memory). A keeper that died is
 * replaced by the next restore.
 */
export function weightsKeepers(
  log: (message: string, level: "info" | "warn") => void,
  start: (job: StageJob) => WeightsKeeper = (job) => WeightsKeeper.start(job.info, log),
): {
  stage: (job: StageJob) => StagedWeights;
  /** Ends every keeper (their pinned weights go with them) and returns how many, once their processes have
   *  ended; the next restore starts one. The daemon also calls it as it stops. */
  release: () => Promise<number>;
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
      const ending = [...keepers.values()].map((k) => k.close());
      keepers.clear();
      await Promise.all(ending);
      return ending.length;
    },
  };
}
