import type { Engine } from "./engine.js";
import { httpEngine } from "./http-engine.js";

/**
 * The engine adapter for a kind named in a manifest or on the command line. vLLM's is loaded when first asked for: it
 * brings the contracts' zod/v4, which a restore of any other engine does without. Why:
 * docs/decisions/0016-restore-fixed-costs.md.
 */
export async function engineFor(kind: "http" | "vllm"): Promise<Engine> {
  return kind === "vllm" ? (await import("./vllm-engine.js")).vllmEngine : httpEngine;
}
