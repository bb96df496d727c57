/**
 * stasis's settings, read once: from the environment where a command starts (the CLI's `main`), checked against
 * `KNOBS`, and handed to capture, restore and the other commands as a typed `Config`. Nothing else reads a
 * STASIS_* variable (config.test.ts holds src/ to it).
 *
 * A capture or restore done by `stasis serve` uses the daemon's settings, except the ones the CLI's user set for it:
 * the CLI sends those (`requestKnobs`) with the request, and the daemon lays them over its own (`withRequest`).
 *
 * @example
 *   const { config } = readConfig(process.env);   // E_USAGE for STASIS_WORKING_SET=maybe
 *   if (config.workingSet) ...
 */
import { StasisError } from "../errors.js";
import { KNOBS, type Config, type Knob, type KnobKey } from "./knobs.js";
import { INTERNAL } from "./internal.js";

export type { Config, KnobKey } from "./knobs.js";

/** Where a setting's value came from. */
export type Source = "default" | "env" | "request";

/** The knobs a client set, as their variables' raw text, sent with a request to the daemon. */
export type RequestKnobs = Record<string, string>;

export interface Settings {
  config: Config;
  sources: Record<KnobKey, Source>;
  /** The text of each knob that was set (by variable name), as it was given. */
  given: Record<string, string>;
}

const KEYS = Object.keys(KNOBS) as KnobKey[];

/** The settings `env` gives: each knob's value where it is set (and not empty), else its default. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Settings {
  const config: Record<string, unknown> = {};
  const sources = {} as Record<KnobKey, Source>;
  const given: Record<string, string> = {};
  for (const key of KEYS) {
    const knob: Knob<unknown> = KNOBS[key];
    const raw = env[knob.env];
    const set = raw !== undefined && raw !== "";
    config[key] = set ? parseKnob(knob, raw, "the environment") : knob.default;
    sources[key] = set ? "env" : "default";
    if (set) given[knob.env] = raw;
  }
  return { config: config as Config, sources, given };
}

/** One knob's value in `env` (its default where unset), checked like `readConfig`'s. */
export function knobValue<K extends KnobKey>(key: K, env: NodeJS.ProcessEnv = process.env): Config[K] {
  const knob: Knob<unknown> = KNOBS[key];
  const raw = env[knob.env];
  return (raw !== undefined && raw !== "" ? parseKnob(knob, raw, "the environment") : knob.default) as Config[K];
}

/** `readConfig(env).config`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return readConfig(env).config;
}

/** The knobs a capture or restore reads that were set in `settings` (not defaults): what the CLI sends with one. */
export function requestKnobs(settings: Settings): RequestKnobs {
  const out: RequestKnobs = {};
  for (const key of KEYS) {
    const knob: Knob<unknown> = KNOBS[key];
    const raw = settings.given[knob.env];
    if (knob.perRequest && raw !== undefined) out[knob.env] = raw;
  }
  return out;
}

/**
 * The daemon's settings with a request's knobs laid over them, for that request. A knob that is not one a capture
 * or restore reads, or a bad value, is E_USAGE (the daemon answers 400).
 */
export function withRequest(base: Settings, request: RequestKnobs | undefined): Settings {
  if (!request || Object.keys(request).length === 0) return base;
  const config: Record<string, unknown> = { ...base.config };
  const sources = { ...base.sources };
  const given = { ...base.given };
  for (const [name, raw] of Object.entries(request)) {
    const key = KEYS.find((k) => KNOBS[k].env === name);
    const knob: Knob<unknown> | undefined = key === undefined ? undefined : KNOBS[key];
    if (key === undefined || !knob?.perRequest) {
      const perRequest = KEYS.filter((k) => KNOBS[k].perRequest).map((k) => KNOBS[k].env);
      throw new StasisError("E_USAGE", `a request to the daemon cannot set ${name}`, {
        hint: `a capture or restore request may set ${perRequest.join(", ")}`,
        details: { knob: name },
      });
    }
    config[key] = parseKnob(knob, raw, "the request");
    sources[key] = "request";
    given[name] = raw;
  }
  return { config: config as Config, sources, given };
}

/**
 * The STASIS_* variables set in `env` that stasis does not read: a typo, or a setting since removed, which would
 * otherwise be ignored without a word (`stasis doctor` warns of them).
 */
export function unknownVariables(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = new Set([...Object.values(KNOBS).map((k) => k.env), ...INTERNAL.map((v) => v.env)]);
  return Object.keys(env)
    .filter((name) => name.startsWith("STASIS_") && env[name] !== "" && !known.has(name as `STASIS_${string}`))
    .sort();
}

/** The knobs a request set, as NAME=VALUE, for the daemon's log. */
export function describeRequest(request: RequestKnobs | undefined): string {
  return Object.entries(request ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function parseKnob(knob: Knob<unknown>, raw: string, where: string): unknown {
  const value = knob.parse(raw);
  if (value !== undefined) return value;
  throw new StasisError(
    "E_USAGE",
    `${knob.env}=${JSON.stringify(raw)} (from ${where}) is not valid: expected ${knob.expected}`,
    {
      hint: `set ${knob.env} to ${knob.expected}, or unset it for the default (docs/configuration.md)`,
      details: { knob: knob.env, value: raw, expected: knob.expected },
    },
  );
}
