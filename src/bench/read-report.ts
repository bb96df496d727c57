import { readFile } from "node:fs/promises";
import { z } from "zod";
import { StasisError } from "../errors.js";
import type { BenchReport } from "./bench.js";

const Phase = z.object({ name: z.string(), startMs: z.number(), endMs: z.number(), ms: z.number() }).passthrough();
/** What the table and the pictures read of a results.json; the rest passes through unchecked. */
const Report = z
  .object({
    date: z.string(),
    machine: z.object({ cpuModel: z.string() }).passthrough(),
    snapshot: z.string(),
    repeat: z.number(),
    strategies: z
      .array(
        z
          .object({
            strategy: z.string(),
            setup: z.string(),
            runs: z.array(z.object({ firstTokenMs: z.number() }).passthrough()),
            medianReadyMs: z.number(),
            medianFirstTokenMs: z.number(),
            phases: z.array(Phase),
          })
          .passthrough(),
      )
      .min(1),
  })
  .passthrough();

const HINT = "pass the results.json that `stasis bench --out DIR` wrote";

/** Reads an earlier run's results.json (`stasis bench --from`); anything else is an error naming what is wrong. */
export async function readReport(path: string): Promise<BenchReport> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new StasisError("E_FILE_NOT_FOUND", `--from: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`, {
      hint: HINT,
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StasisError("E_USAGE", `--from: ${path} is not JSON (${(err as Error).message})`, {
      hint: HINT,
      cause: err,
    });
  }
  const parsed = Report.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join(".") || "(root)";
    throw new StasisError("E_USAGE", `--from: ${path} is not a stasis bench report: ${where}: ${issue.message}`, {
      hint: HINT,
      details: { issues: parsed.error.issues.slice(0, 5) },
    });
  }
  return parsed.data as unknown as BenchReport;
}
