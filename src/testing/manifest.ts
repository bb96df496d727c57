/** Test support: a snapshot's manifest changed on disk for a test, and put back as it was after. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "../store/manifest.js";

/**
 * Runs `body` while snapshot `name`'s manifest (in the store at `home`) is the one `change` makes of it (the parsed
 * JSON, changed in place or returned anew), then writes the original back, whatever `body` did.
 *
 * @example
 *   await withManifest(home, "pk", (m) => void (m.engine.canary.sha256 = "0".repeat(64)), async () => { ... });
 */
export async function withManifest<T>(
  home: string,
  name: string,
  change: (m: Manifest) => Manifest | void,
  body: () => Promise<T>,
): Promise<T> {
  const file = join(home, "snapshots", name, "manifest.json");
  const original = readFileSync(file, "utf8");
  const m = JSON.parse(original) as Manifest;
  writeFileSync(file, JSON.stringify(change(m) ?? m, null, 2) + "\n");
  try {
    return await body();
  } finally {
    writeFileSync(file, original);
  }
}

/** A manifest that says another capture: what a snapshot captured again under its name looks like to a parked one. */
export const capturedAgain = (m: Manifest): Manifest => ({ ...m, createdAt: new Date().toISOString() });

/** A canary answer no server gives: every restore or take of the snapshot fails its canary. */
export const canaryNoOneGives = (m: Manifest): void => {
  m.engine.canary.sha256 = "0".repeat(64);
};
