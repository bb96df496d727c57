/** Shapes that several commands' `--json` documents share (docs/cli.md). Written as the CLI prints them. */
import { z } from "zod/v4";

export const ms = z.number().nonnegative().describe("milliseconds, rounded to 0.1");
export const bytes = z.number().int().nonnegative();

/** A finished phase of a pipeline (capture, restore, prefetch, bench). */
export const phase = z.looseObject({
  name: z.string(),
  startMs: z.number(),
  endMs: z.number(),
  durationMs: ms,
  ok: z.boolean(),
  bytes: bytes.optional(),
  gbps: z.number().optional().describe("GB/s, rounded to 0.001"),
  detail: z.record(z.string(), z.unknown()).optional(),
});

/** A snapshot's manifest (src/store/manifest.ts validates every field; here the ones readers rely on). */
export const manifest = z.looseObject({
  schema: z.string(),
  name: z.string(),
  createdAt: z.string(),
  stasisVersion: z.string(),
  command: z.looseObject({ argv: z.array(z.string()), cwd: z.string() }),
  server: z.looseObject({ url: z.string(), readyPath: z.string() }),
  engine: z.looseObject({
    kind: z.enum(["http", "vllm"]),
    canary: z.looseObject({ method: z.string(), path: z.string() }),
  }),
  fingerprint: z.looseObject({ arch: z.string(), kernel: z.string() }),
  tree: z.looseObject({ processes: z.number().int(), cudaProcesses: z.number().int() }),
  files: z.array(z.looseObject({ path: z.string(), role: z.string(), size: bytes, sha256: z.string() })),
  timings: z.record(z.string(), z.number()),
});

/** Per-file page-cache figures (residency, evict, prefetch). */
export const fileRange = { path: z.string(), size: bytes, offset: bytes, length: bytes };

export const error = z.looseObject({
  code: z.string().regex(/^E_[A-Z_]+$/),
  message: z.string(),
  hint: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
