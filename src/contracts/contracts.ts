/**
 * The cross-language contracts, published as JSON Schemas in contracts/ (scripts/gen-schemas.mjs writes them; the
 * test beside this file fails while they differ): the engine side's tests validate what it really writes against
 * them (python/tests/test_contracts.py), and the TypeScript side parses with these same schemas.
 */
import { z } from "zod/v4";
import { EngineError } from "./engine-error.js";
import { HttpEngineState, VllmEngineState } from "./engine-state.js";
import { StageControl, StageJob, StagerLine } from "./stage.js";

export const CONTRACTS = {
  "stage-job": StageJob,
  "stage-control": StageControl,
  "stager-line": StagerLine,
  "engine-error": EngineError,
  "engine-state.http": HttpEngineState,
  "engine-state.vllm": VllmEngineState,
} as const;
export type ContractName = keyof typeof CONTRACTS;

/** The JSON Schema of one contract, as published in contracts/<name>.schema.json. */
export function contractSchema(name: ContractName): Record<string, unknown> {
  const generated = z.toJSONSchema(CONTRACTS[name], { target: "draft-2020-12" }) as Record<string, unknown>;
  return { $id: `${name}.schema.json`, title: `stasis ${name}`, ...generated };
}
