import { CHECKS, type Check } from "../doctor/checks.js";

/** Runs every environment check; never throws for a failed check (the result says so). */
export async function doctor(): Promise<{ ok: boolean; checks: Check[] }> {
  const checks: Check[] = [];
  for (const c of CHECKS) {
    try {
      checks.push({ name: c.name, ...(await c.probe()) });
    } catch (err) {
      checks.push({ name: c.name, status: "fail", detail: `the check itself failed: ${(err as Error).message}` });
    }
  }
  return { ok: checks.every((c) => c.status !== "fail"), checks };
}
