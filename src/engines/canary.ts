import { createHash } from "node:crypto";
import { StasisError } from "../errors.js";
import type { Canary } from "../store/manifest.js";
import type { CanaryAnswer, CanaryRequest } from "./engine.js";

const KEEP_TEXT = 64 * 1024;

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** What the manifest keeps of a canary: the request, and the answer's status and digest (and text when small). */
export function canaryRecord(req: CanaryRequest, answer: CanaryAnswer): Canary {
  if (answer.status < 200 || answer.status >= 300) {
    throw new StasisError(
      "E_ENGINE",
      `the canary request ${req.method} ${req.path} answered ${answer.status}: ${answer.text.slice(0, 200)}`,
      {
        hint: "the canary must be a request the server answers successfully; check --canary-url / --canary-body",
      },
    );
  }
  return {
    method: req.method,
    path: req.path,
    ...(req.body === undefined ? {} : { body: req.body }),
    status: answer.status,
    sha256: sha256(answer.text),
    ...(answer.text.length <= KEEP_TEXT ? { text: answer.text } : {}),
  };
}

/** Throws E_CANARY_MISMATCH unless `answer` is exactly what was recorded at capture. */
export function checkCanary(recorded: Canary, answer: CanaryAnswer): void {
  if (answer.status === recorded.status && sha256(answer.text) === recorded.sha256) return;
  const was = recorded.text !== undefined ? ` expected ${JSON.stringify(recorded.text.slice(0, 160))}` : "";
  throw new StasisError(
    "E_CANARY_MISMATCH",
    `the restored server answered the canary differently: status ${answer.status} (expected ${recorded.status}), got ${JSON.stringify(answer.text.slice(0, 160))}${was}`,
    {
      hint: "the restored state is not the captured one; the instance was stopped. Capture the snapshot again, and report this if it repeats",
    },
  );
}

/**
 * Throws E_CANARY_UNSTABLE unless a second answer to the canary is the one `first` recorded: a canary that changes
 * between two requests to the same running server would make every restore of its snapshot fail its check.
 */
export function checkStableCanary(first: Canary, again: CanaryAnswer): void {
  if (again.status === first.status && sha256(again.text) === first.sha256) return;
  const was = first.text !== undefined ? JSON.stringify(first.text.slice(0, 120)) : `sha256 ${first.sha256}`;
  throw new StasisError(
    "E_CANARY_UNSTABLE",
    `the canary ${first.method} ${first.path} answered differently twice in a row: ${was}, ` +
      `then status ${again.status} ${JSON.stringify(again.text.slice(0, 120))}`,
    {
      hint:
        "a restore is checked against the captured answer, so the canary must be deterministic: use a greedy request " +
        "(temperature 0, a fixed seed) or an endpoint whose answer does not change, with --canary-url / --canary-body",
      details: { path: first.path, first: first.sha256, second: sha256(again.text) },
    },
  );
}
