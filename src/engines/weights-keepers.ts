import {
  WeightsKeeper,
  type PinJob,
  type Pinned,
  type StageInfo,
  type StageJob,
  type StagedWeights,
} from "./weights-stager.js";

/** Weights images a keeper keeps pinned unless told (`stasis serve --pin-weights-max`): the last two restored. */
export const DEFAULT_PINNED_IMAGES = 2;

/**
 * `stasis serve --pin-weights`: one weights keeper per engine interpreter (and import path), started by the first
 * restore that stages with it and kept until the daemon stops. Asked to release (POST /v1/weights/release:
 * `stasis bench` does so before a restore-cold, which must find no weights in memory), the keepers free their pinned
 * weights and stay up, holding none, with their CUDA contexts: the next restore reads the weights file again but
 * its keeper starts reading at once (a fresh keeper, a Python process and cuInit loaded from a cold disk, starts
 * seconds late: docs/decisions/0003-weights-keeper.md). A keeper that died is replaced by the next restore; one
 * that does not answer a release is ended. A keeper can also be asked to pin a snapshot's weights ahead of any restore
 * (POST /v1/weights/pin, `stasis prefetch --snapshot`): its first restore then finds them pinned.
 */
export function weightsKeepers(
  log: (message: string, level: "info" | "warn") => void,
  /** Weights images each keeper keeps pinned (`stasis serve --pin-weights-max`). */
  maxImages: number,
  start: (info: StageInfo) => WeightsKeeper = (info) => WeightsKeeper.start(info, log, maxImages),
): {
  stage: (job: StageJob) => StagedWeights;
  /** Pins `job`'s weights now, in the keeper of its engine's interpreter (started if none runs). */
  pin: (job: PinJob) => Promise<Pinned>;
  /** Frees every keeper's pinned weights; resolves with how many keepers held any once they all have answered. */
  release: () => Promise<number>;
  /** Bytes of weights the keepers hold pinned now. */
  pinnedBytes: () => number;
  /** Ends every keeper (their pinned weights and CUDA contexts go with them) once their processes have ended: the
   *  daemon does so as it stops. */
  close: () => Promise<void>;
} {
  const keepers = new Map<string, WeightsKeeper>();
  const keeperFor = (info: StageInfo): WeightsKeeper => {
    const key = `${info.python}\0${info.path}`;
    let keeper = keepers.get(key);
    if (!keeper || !keeper.alive()) {
      keeper = start(info);
      keepers.set(key, keeper);
    }
    return keeper;
  };
  return {
    stage: (job) => keeperFor(job.info).stage(job),
    pin: (job) => keeperFor(job.info).pin(job),
    pinnedBytes: () => [...keepers.values()].reduce((sum, k) => sum + k.heldBytes(), 0),
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
