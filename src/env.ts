/**
 * An integer knob from the environment: `name`'s value when it is an integer from `min` to `max`, else undefined
 * (unset, not a number, out of range), for the caller's default. Most are for measuring; the docs name each.
 */
export function envInt(name: string, min: number, max = Number.MAX_SAFE_INTEGER, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const n = Number(env[name]);
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

/** A knob that is one of `choices`: `name`'s value when it is one of them, else undefined (the caller's default). */
export function envChoice<T extends string>(name: string, choices: readonly T[], env: NodeJS.ProcessEnv = process.env): T | undefined {
  const v = env[name];
  return v !== undefined && (choices as readonly string[]).includes(v) ? (v as T) : undefined;
}
