import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Snapshot } from "../store/store.js";

/** What a benchmark ran: the engine (as the snapshot's fingerprint names it) and the model it served. */
export interface BenchSubject {
  engine: { adapter: string; name?: string; version?: string };
  model: {
    /** The model the server lists (the canary's `model`), e.g. a path or a hub id. */
    id?: string;
    /** From the model folder's config.json where the command names one: what fixes the model's size. */
    shape?: Record<string, unknown>;
    weightsBytes: number;
    imageBytes: number;
    /** GPU memory the CUDA checkpoint held at capture (what the CUDA restore moves back). */
    gpuStateBytes?: number;
  };
}

const SHAPE_KEYS = [
  "architectures",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "intermediate_size",
  "vocab_size",
  "tie_word_embeddings",
  "torch_dtype",
  "dtype",
];

/**
 * The engine and model of a snapshot, for a benchmark's results: read from its manifest and, where the captured
 * command names a folder with a config.json (vLLM's `serve MODEL_DIR`), from that file. Nothing here is typed in by
 * hand, so results.json says what really ran.
 */
export async function benchSubject(snap: Snapshot): Promise<BenchSubject> {
  const m = snap.manifest;
  const bytes = (role: string) => m.files.filter((f) => f.role === role).reduce((a, f) => a + f.size, 0);
  let id: string | undefined;
  try {
    const body = JSON.parse(m.engine.canary.body ?? "{}") as { model?: unknown };
    if (typeof body.model === "string") id = body.model;
  } catch {
    // a canary that is not JSON names no model
  }
  return {
    engine: { adapter: m.engine.kind, ...(m.fingerprint.engine ?? {}) },
    model: {
      ...(id ? { id } : {}),
      ...((await modelShape(m.command.argv, m.command.cwd)) ?? {}),
      weightsBytes: bytes("weights"),
      imageBytes: bytes("image"),
      ...(m.gpu ? { gpuStateBytes: m.gpu.totalBytes } : {}),
    },
  };
}

async function modelShape(argv: string[], cwd: string): Promise<{ shape: Record<string, unknown> } | undefined> {
  for (const arg of argv.slice(1)) {
    if (arg.startsWith("-")) continue;
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(
        await readFile(join(arg.startsWith("/") ? arg : join(cwd, arg), "config.json"), "utf8"),
      ) as Record<string, unknown>;
    } catch {
      continue;
    }
    const shape = Object.fromEntries(SHAPE_KEYS.filter((k) => config[k] !== undefined).map((k) => [k, config[k]]));
    return { shape };
  }
  return undefined;
}
