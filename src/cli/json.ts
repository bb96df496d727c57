/**
 * The one shape of every `--json` document: `{"schema": "stasis.<command>/v1", ...}`, the command's data with
 * one vocabulary (docs/cli.md): durations are milliseconds named `*Ms`, rounded to 0.1 ms (a phase's or a run's
 * own `ms` is written `durationMs`); any other fraction (a rate in GB/s, a ratio) is rounded to 0.001.
 * A field's meaning never changes within a version: a change that would break a reader is a new `/v2`.
 *
 * @example
 *   jsonDocument("ps", { instances: [] }); // { schema: "stasis.ps/v1", instances: [] }
 */
export function jsonDocument(command: string, data: object): Record<string, unknown> {
  return { schema: schemaId(command), ...(normalize(data) as Record<string, unknown>) };
}

export const schemaId = (command: string): string => `stasis.${command}/v1`;

function normalize(value: unknown, key = ""): unknown {
  if (typeof value === "number") {
    if (Number.isInteger(value) || !Number.isFinite(value)) return value;
    return /Ms$|^ms$/.test(key) ? Math.round(value * 10) / 10 : Math.round(value * 1000) / 1000;
  }
  if (Array.isArray(value)) return value.map((v) => normalize(v));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k === "ms" ? "durationMs" : k] = normalize(v, k);
    }
    return out;
  }
  return value;
}
