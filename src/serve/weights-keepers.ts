import { WeightsKeeper, type StageJob } from "../engines/weights-stager.js";
import type { StagedWeights } from "../engines/weights-stager.js";

/**
 * `stasis serve --pin-weights`: one weights keeper per engine interpreter (and import path), started by the first
 * restore that stages with it and kept until the daemon stops. A keeper that died is replaced by the next restore.
 */
export function weightsKeepers(
  log: (message: string, level: "info" | "warn") => void,
  start: (job: StageJob) => WeightsKeeper = (job) => WeightsKeeper.start(job.info, log),
): {
  stage: (job: StageJob) => StagedWeights;
  close: () => void;
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
    close() {
      for (const k of keepers.values()) k.close();
      keepers.clear();
    },
  };
}
