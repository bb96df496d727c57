import { CHECKS, type Check } from "../doctor/checks.js";
import { KNOBS, type KnobKey } from "../config/knobs.js";
import type { Settings, Source } from "../config/config.js";

/** One setting as `stasis doctor` shows it: its effective value and where that came from. */
export interface SettingReport {
  knob: string;
  value: string | number | boolean | null;
  source: Source;
  doc: string;
}

/** Runs every environment check; never throws for a failed check (the result says so). */
export async function doctor(settings: Settings): Promise<{ ok: boolean; checks: Check[]; settings: SettingReport[] }> {
  const checks: Check[] = [];
  for (const c of CHECKS) {
    try {
      checks.push({ name: c.name, ...(await c.probe(settings.config)) });
    } catch (err) {
      checks.push({ name: c.name, status: "fail", detail: `the check itself failed: ${(err as Error).message}` });
    }
  }
  return { ok: checks.every((c) => c.status !== "fail"), checks, settings: settingsReport(settings) };
}

/** Every knob's effective value (null: none, the built-in choice) and its source, in the schema's order. */
export function settingsReport(settings: Settings): SettingReport[] {
  return (Object.keys(KNOBS) as KnobKey[]).map((key) => ({
    knob: KNOBS[key].env,
    value: settings.config[key] ?? null,
    source: settings.sources[key],
    doc: KNOBS[key].doc,
  }));
}
