/**
 * The engine side's error codes (python/stasis_engine: `StasisEngineError(code, ...)` and the error lines and RPC
 * answers that carry its `to_dict()`), and the product's code for each. python/tests/test_contracts.py fails when
 * the engine side raises a code missing here. Plain data, no zod: the vLLM adapter maps codes with it on a restore's
 * path, where the contracts' zod/v4 is not loaded (docs/decisions/0016-restore-fixed-costs.md); the schema of an
 * engine's error is engine-error.ts.
 */
import type { ErrorCode } from "../errors.js";

/** engine code -> the StasisError code a failure with it becomes (`E_WEIGHTS_INVALID`: a weights file or layout
 *  the engine cannot take; anything else the engine refuses or fails is `E_ENGINE`). */
export const ENGINE_ERROR_CODES = {
  bad_argument: "E_ENGINE",
  bad_request: "E_ENGINE",
  cuda_error: "E_ENGINE",
  cuda_vmm: "E_ENGINE",
  engine_asleep: "E_ENGINE",
  engine_dead: "E_ENGINE",
  engine_failed: "E_ENGINE",
  gpu_memory: "E_ENGINE",
  gpu_unavailable: "E_ENGINE",
  internal: "E_ENGINE",
  method_not_allowed: "E_ENGINE",
  model_invalid: "E_ENGINE",
  model_missing: "E_ENGINE",
  model_not_found: "E_ENGINE",
  nccl_error: "E_ENGINE",
  nccl_suspend_unsupported: "E_ENGINE",
  nccl_timeout: "E_CUDA_TIMEOUT",
  no_cuda: "E_ENGINE",
  not_found: "E_ENGINE",
  rpc_bad_args: "E_ENGINE",
  rpc_unknown_method: "E_ENGINE",
  stage_failed: "E_ENGINE",
  stage_protocol: "E_ENGINE",
  stage_refused: "E_ENGINE",
  stage_timeout: "E_ENGINE",
  stage_unreachable: "E_ENGINE",
  stage_unsupported: "E_ENGINE",
  unsupported: "E_ENGINE",
  vllm_no_weights_pool: "E_WEIGHTS_INVALID",
  vllm_unavailable: "E_ENGINE",
  vllm_weights_asleep: "E_WEIGHTS_INVALID",
  vllm_weights_awake: "E_WEIGHTS_INVALID",
  weights_awake: "E_WEIGHTS_INVALID",
  weights_bad_header: "E_WEIGHTS_INVALID",
  weights_checksum: "E_WEIGHTS_INVALID",
  weights_io: "E_WEIGHTS_INVALID",
  weights_layout: "E_WEIGHTS_INVALID",
  weights_length: "E_WEIGHTS_INVALID",
  weights_missing: "E_WEIGHTS_INVALID",
  weights_not_loaded: "E_WEIGHTS_INVALID",
  weights_target: "E_WEIGHTS_INVALID",
  weights_truncated: "E_WEIGHTS_INVALID",
} as const satisfies Record<string, ErrorCode>;

export type EngineErrorCode = keyof typeof ENGINE_ERROR_CODES;

/** The product's code for an engine's code; one this version does not know (a newer engine side) is E_ENGINE. */
export function productCode(engineCode: string | undefined): ErrorCode {
  return Object.hasOwn(ENGINE_ERROR_CODES, engineCode ?? "")
    ? ENGINE_ERROR_CODES[engineCode as EngineErrorCode]
    : "E_ENGINE";
}
