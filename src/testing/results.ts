/** Test support: GPU tests and benchmarks append what they measured to $STASIS_RESULTS_DIR/<name>.json. */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export function recordResult(file: string, entry: Record<string, unknown>): void {
  const dir = process.env.STASIS_RESULTS_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, file), JSON.stringify({ at: new Date().toISOString(), ...entry }) + "\n");
}
