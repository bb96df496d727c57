import { StasisError } from "../errors.js";

/** Typed readers for parsed CLI values: each names the option and what was expected when a value is bad. */
export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function num(
  values: Record<string, unknown>,
  name: string,
  dflt: number,
  opts: { min?: number; max?: number } = {},
): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (
    typeof v !== "string" ||
    v.trim() === "" ||
    !Number.isFinite(n) ||
    (opts.min !== undefined && n < opts.min) ||
    (opts.max !== undefined && n > opts.max)
  ) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : "", opts.max !== undefined ? `<= ${opts.max}` : ""]
      .filter(Boolean)
      .join(" and ");
    throw new StasisError("E_USAGE", `--${name}: expected a number${range ? ` ${range}` : ""}, got "${String(v)}"`);
  }
  return n;
}

export function oneOf<T extends string>(
  values: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
  dflt: T,
): T {
  const v = values[name];
  if (v === undefined) return dflt;
  if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
  throw new StasisError("E_USAGE", `--${name}: expected one of ${allowed.join(", ")}, got "${String(v)}"`);
}

export function list(values: Record<string, unknown>, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? (v as string[]) : [String(v)];
}

/** KEY=VALUE pairs from a repeatable option. */
export function envPairs(values: Record<string, unknown>, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list(values, name)) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new StasisError("E_USAGE", `--${name}: expected KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}
