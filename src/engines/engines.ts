import type { Engine } from "./engine.js";
import { httpEngine } from "./http-engine.js";
import { vllmEngine } from "./vllm-engine.js";

/** The engine adapter for a kind named in a manifest or on the command line. */
export function engineFor(kind: "http" | "vllm"): Engine {
  return kind === "vllm" ? vllmEngine : httpEngine;
}
