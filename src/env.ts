/**
 * An integer knob from the environment: `name`'s value when it is an integer from `min` to `max`, else undefined
 * (unset, not a number, out of range), for the caller's default. Most are for measuring; the docs name each.
 */
export function envInt(name: string, min: number, max = Number.MAX_SAFE_INTEGER, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const n = Number(env[name]);
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}
