import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import type { GpuInventory } from "../cuda/gpus.js";
import { compareFingerprints, machineFingerprint } from "../fingerprint/fingerprint.js";
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
