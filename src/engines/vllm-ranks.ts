import { StasisError } from "../errors.js";
import { productCode } from "../contracts/engine-errors.js";

/** One worker's answer to a stasis worker-extension method: `{ok, rank, world_size, ...}`. */
export interface RankResult {
  ok?: boolean;
  rank?: number;
  world_size?: number;
  error?: { code?: string; message?: string; hint?: string };
  [key: string]: unknown;
}

const EXTENSION_HINT =
  "start vLLM with --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension (every worker loads it)";

/**
 * Checks a `/collective_rpc` answer: one stasis answer per worker, and every worker answered. A worker that
 * failed (`ok: false`) fails the call with its own message and hint; then the count: `expected` workers where
 * the caller knows it (a snapshot's `ranks`), else the world size the workers report, and ranks 0..n-1 once each.
 * A tensor-parallel server whose workers did not all answer must not be captured or resumed half done.
 *
 * @example checkRanks("stasis_load_weights", body.results, 2) // two answers, ranks 0 and 1, all ok
 */
export function checkRanks(method: string, results: unknown, expected?: number): RankResult[] {
  if (!Array.isArray(results) || results.length === 0) {
    throw new StasisError("E_ENGINE", `${method}: the server answered no worker results`, {
      hint: "is it vLLM with VLLM_SERVER_DEV_MODE=1 (POST /collective_rpc)?",
    });
  }
  results.forEach((r, i) => {
    if (!r || typeof r !== "object" || Array.isArray(r) || typeof (r as RankResult).ok !== "boolean") {
      throw new StasisError("E_ENGINE", `${method}: worker answer ${i} is ${brief(r)}, not a stasis answer`, {
        hint: EXTENSION_HINT,
      });
    }
  });
  const answers = results as RankResult[];
  const failed = answers.find((r) => r.ok === false);
  if (failed) {
    throw new StasisError(
      productCode(failed.error?.code),
      `${method} failed in rank ${failed.rank ?? "?"}: ${failed.error?.message ?? "no message"}`,
      { hint: failed.error?.hint ?? "see the server's log", details: { method, error: failed.error } },
    );
  }
  const reported = [...new Set(answers.map((r) => r.world_size).filter((w) => w !== undefined))];
  if (reported.length > 1) {
    throw new StasisError("E_ENGINE", `${method}: the workers disagree on the world size (${reported.join(", ")})`, {
      hint: "see the server's log",
    });
  }
  const size = expected ?? (typeof reported[0] === "number" ? reported[0] : answers.length);
  // One answer without a rank is the one worker's (an engine that predates ranks in its answers).
  const ranks = answers.length === 1 && answers[0]!.rank === undefined ? [0] : answers.map((r) => r.rank);
  const missing = Array.from({ length: size }, (_, r) => r).filter((r) => !ranks.includes(r));
  const twice = ranks.filter((r, i) => ranks.indexOf(r) !== i);
  const stray = ranks.filter((r) => !(Number.isInteger(r) && (r as number) >= 0 && (r as number) < size));
  if (answers.length !== size || missing.length || twice.length || stray.length) {
    const problems = [
      missing.length ? `no answer from rank ${missing.join(", ")}` : "",
      twice.length ? `rank ${twice.join(", ")} answered twice` : "",
      stray.length ? `unexpected rank ${stray.map((r) => String(r)).join(", ")}` : "",
    ].filter(Boolean);
    throw new StasisError(
      "E_ENGINE",
      `${method}: ${answers.length} answers for ${size} workers (${problems.join("; ") || "count differs"})`,
      {
        hint:
          expected !== undefined
            ? `the snapshot was captured with ${expected} workers; start the server as at capture`
            : "every worker must answer; see the server's log",
        details: { method, ranks, size },
      },
    );
  }
  return answers;
}

function brief(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
