import { CHECKS, type Check } from "../doctor/checks.js";
import { KNOBS, type KnobKey } from "../config/knobs.js";
import { REMOVED } from "../config/internal.js";
import { unknownVariables, type Settings, type Source } from "../config/config.js";

/** One setting as `stasis doctor` shows it: its effective value and where that came from. */
export interface SettingReport {
  knob: string;
  value: string | number | boolean | null;
  source: Source;
  doc: string;
}

/** Runs every environment check; never throws for a failed check (the result says so). */
export async function doctor(
  settings: Settings,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ok: boolean; checks: Check[]; settings: SettingReport[] }> {
  const checks: Check[] = [];
  for (const c of CHECKS) {
    try {
      checks.push({ name: c.name, ...(await c.probe(settings.config)) });
    } catch (err) {
      checks.push({ name: c.name, status: "fail", detail: `the check itself failed: ${(err as Error).message}` });
    }
  }
  checks.push(variablesCheck(unknownVariables(env)));
  return { ok: checks.every((c) => c.status !== "fail"), checks, settings: settingsReport(settings) };
}

/** Whether every STASIS_* variable set is one stasis reads; one since removed is named with what replaced it. */
export function variablesCheck(unknown: string[]): Check {
  if (unknown.length === 0) {
    return { name: "settings", status: "pass", detail: "every STASIS_* variable set is a setting stasis reads" };
  }
  const said = unknown.map((name) => {
    const removed = REMOVED.find((r) => r.env === name);
    return removed ? `${name} (removed; instead: ${removed.instead})` : `${name} (no such setting)`;
  });
  return {
    name: "settings",
    status: "warn",
    detail: `set, but not read by stasis: ${said.join("; ")}`,
    fix: "unset them (the settings: docs/configuration.md)",
  };
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
