/** An engine's failure as the engine side reports it: the contract "engine-error", its codes from engine-errors.ts. */
import { z } from "zod/v4";
import { ENGINE_ERROR_CODES, type EngineErrorCode as Code } from "./engine-errors.js";

export const EngineErrorCode = z.enum(Object.keys(ENGINE_ERROR_CODES) as [Code, ...Code[]]);

/** A failure as the engine side reports it (`StasisEngineError.to_dict()`). */
export const EngineError = z.object({
  code: EngineErrorCode,
  message: z.string(),
  hint: z.string().nullish(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type EngineError = z.infer<typeof EngineError>;
