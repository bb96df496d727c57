import { StasisError } from "../errors.js";
import { engineFor } from "../engines/engines.js";
import type { PinJob } from "../engines/weights-stager.js";
import { gpuIdentityFromProc } from "../cuda/gpus.js";
import { openSnapshot } from "../store/store.js";
import { stagingGpu } from "./background.js";

/**
 * What a restore of snapshot `name` would stage, on the GPU it would restore onto: what `stasis serve
 * --pin-weights` pins ahead of the first restore (POST /v1/weights/pin). E_USAGE where there is nothing to stage (an
 * engine or snapshot without staged weights), E_GPU_UNAVAILABLE where no GPU here could take the snapshot.
 */
export async function pinJobFor(name: string): Promise<PinJob> {
  const snap = await openSnapshot(name);
  const m = snap.manifest;
  const source = (await engineFor(m.engine.kind)).stageSource?.(m.engine.state, snap.dir);
  if (!source) {
    throw new StasisError(
      "E_USAGE",
      `snapshot "${name}" has no weights to pin: its engine (${m.engine.kind}) did not sleep at level 2 with a layout it can adopt`,
      {
        hint: "only snapshots of the vLLM adapter's engines at sleep level 2 (the reference engine's) restore from pinned weights",
      },
    );
  }
  const gpu = stagingGpu(m, m.gpu ? await gpuIdentityFromProc() : undefined, undefined);
  if (!gpu) {
    throw new StasisError(
      "E_GPU_UNAVAILABLE",
      `no GPU here to pin snapshot "${name}"'s weights for (it needs ${m.fingerprint.gpu?.used.length ?? 0} GPU(s) like the one it was captured on)`,
      {
        hint: "stasis inspect shows the GPU it was captured on; stasis doctor what this machine has",
      },
    );
  }
  return { ...source, gpu };
}
