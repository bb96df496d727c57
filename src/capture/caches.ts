import { mkdir, stat, readdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { run, check } from "../proc/run.js";
import type { Events } from "../events.js";
import { resolveInSnapshot } from "../store/confine.js";
import { PRIVATE_DIR } from "../store/private.js";

/**
 * The engine's compile caches (vLLM's torch.compile artifacts, Inductor, Triton, CUDA's JIT cache,
 * FlashInfer), captured into the snapshot as one tar file each. A restore that cannot use the process image
 * (another machine, `--fallback warm`) starts the server with these caches instead of compiling again.
 */
export const CACHE_DIRS: { variable: string; fallback: (env: NodeJS.ProcessEnv) => string }[] = [
  { variable: "VLLM_CACHE_ROOT", fallback: () => join(homedir(), ".cache", "vllm") },
  { variable: "TORCHINDUCTOR_CACHE_DIR", fallback: (env) => join("/tmp", `torchinductor_${env.USER ?? "root"}`) },
  { variable: "TRITON_CACHE_DIR", fallback: () => join(homedir(), ".triton", "cache") },
  { variable: "CUDA_CACHE_PATH", fallback: () => join(homedir(), ".nv", "ComputeCache") },
  { variable: "FLASHINFER_WORKSPACE_BASE", fallback: () => join(homedir(), ".cache", "flashinfer") },
];

export interface CapturedCache {
  variable: string;
  /** Where the server had it. */
  dir: string;
  /** The tar file, relative to the snapshot folder. */
  file: string;
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
    }
  };
  await walk(dir);
  return total;
}

/**
 * Tars each compile cache the server used (by its variable, or the default place) into `<snapshot>/caches/`. Caches
 * larger than `maxBytes` are left out (with a warning): a snapshot should not carry a whole home cache.
 */
export async function captureCaches(
  serverEnv: NodeJS.ProcessEnv,
  snapshotDir: string,
  maxBytes: number,
  events: Events,
): Promise<CapturedCache[]> {
  const out: CapturedCache[] = [];
  for (const c of CACHE_DIRS) {
    const dir = serverEnv[c.variable] || c.fallback(serverEnv);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const bytes = await duBytes(dir);
    if (bytes === 0) continue;
    if (bytes > maxBytes) {
      events.log(
        `${c.variable} (${dir}) holds ${(bytes / 2 ** 30).toFixed(1)} GiB: not captured (limit STASIS_MAX_CACHE_BYTES)`,
        "warn",
      );
      continue;
    }
    await mkdir(join(snapshotDir, "caches"), { recursive: true, mode: PRIVATE_DIR });
    const file = join("caches", `${c.variable.toLowerCase()}.tar`);
    check(
      await run("tar", ["-C", dir, "-cf", join(snapshotDir, file), "."], { timeoutMs: 600_000 }),
      "E_IO",
      `archiving ${dir}`,
    );
    out.push({ variable: c.variable, dir, file });
  }
  return out;
}

/** Unpacks captured caches under `into`; returns the environment that points the server at them. */
export async function unpackCaches(
  snapshotDir: string,
  caches: CapturedCache[],
  into: string,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const c of caches) {
    const dir = join(into, c.variable.toLowerCase());
    await mkdir(dir, { recursive: true });
    const tar = await resolveInSnapshot(snapshotDir, c.file); // the manifest's word, checked on disk
    check(await run("tar", ["-C", dir, "-xf", tar], { timeoutMs: 600_000 }), "E_IO", `unpacking ${c.file}`);
    env[c.variable] = dir;
  }
  return env;
}
