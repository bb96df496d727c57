import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { GpuInventory } from "../cuda/gpus.js";
import type { CudaDriver } from "../cuda/driver.js";
import { compareFingerprints, machineFingerprint } from "./fingerprint.js";
import type { Manifest } from "../store/manifest.js";

/**
 * Refuses a snapshot whose fingerprint does not match this machine (E_FINGERPRINT_MISMATCH, listing each
 * difference), unless forced, in which case the differences become warnings.
 */
export async function checkFingerprint(
  m: Manifest,
  opts: { force: boolean; criuVersion: string; gpu: GpuInventory | undefined },
  events: Events,
): Promise<void> {
  const here = await machineFingerprint({ criuVersion: opts.criuVersion, gpu: opts.gpu });
  const diffs = compareFingerprints(m.fingerprint, here);
  if (diffs.length === 0) return;
  const text = diffs.map((d) => `${d.field}: captured ${d.captured}, here ${d.here}`).join("; ");
  if (opts.force) {
    events.log(`restoring despite a fingerprint mismatch (--force): ${text}`, "warn");
    return;
  }
  throw new StasisError("E_FINGERPRINT_MISMATCH", `snapshot "${m.name}" was captured on a different machine: ${text}`, {
    hint: "restore it on a machine like the one it was captured on, capture it again here, or pass --force to try anyway",
    details: { differences: diffs },
  });
}

/**
 * Step "fingerprint" of a restore: the snapshot's fingerprint against this machine's, its GPUs as /proc tells first.
 * /proc and NVML might name things differently: on a mismatch, the CUDA driver's own inventory has the last word.
 */
export async function checkHere(
  m: Manifest,
  here: { force: boolean; criuVersion: string; procGpu: GpuInventory | undefined; driver?: Promise<CudaDriver> },
  events: Events,
): Promise<void> {
  const { force, criuVersion, driver } = here;
  try {
    await checkFingerprint(m, { force, criuVersion, gpu: here.procGpu }, events);
  } catch (err) {
    if (!(m.gpu && driver && isMismatch(err))) throw err;
    await checkFingerprint(m, { force, criuVersion, gpu: await (await driver).inventory() }, events);
  }
}

export function isMismatch(err: unknown): err is StasisError {
  return err instanceof StasisError && err.code === "E_FINGERPRINT_MISMATCH";
}
