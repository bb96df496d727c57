import { writeFile } from "node:fs/promises";
import { run } from "../proc/run.js";

/**
 * Empties the page cache, so a "cold" case reads from disk. This is a one-off action on the host (not a
 * setting): `sync; echo 3 > /proc/sys/vm/drop_caches`. The benchmark says so in its output.
 */
export async function dropPageCache(): Promise<void> {
  await run("sync", [], { timeoutMs: 120_000 });
  await writeFile("/proc/sys/vm/drop_caches", "3\n");
}

/** The variables that move an engine's compile caches (vLLM, torch.compile, Triton, CUDA, FlashInfer). */
export const COMPILE_CACHE_VARS = [
  "VLLM_CACHE_ROOT",
  "TORCHINDUCTOR_CACHE_DIR",
  "TRITON_CACHE_DIR",
  "CUDA_CACHE_PATH",
  "FLASHINFER_WORKSPACE_BASE",
  "XDG_CACHE_HOME",
] as const;

/** Environment that points every compile cache under `dir` (empty dir: a cold start; filled: a warm one). */
export function cacheEnv(dir: string): Record<string, string> {
  return Object.fromEntries(COMPILE_CACHE_VARS.map((v) => [v, `${dir}/${v.toLowerCase()}`]));
}
