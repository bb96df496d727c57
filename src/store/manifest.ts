// zod v3, not the contracts' zod/v4: a restore reads every manifest, and v4 takes ~3x as long to load. Why:
// docs/decisions/0016-restore-fixed-costs.md.
import { z } from "zod";
import { StasisError } from "../errors.js";
import { isLinkRemapPath, isShmPath, isSnapshotRelative } from "./confine.js";

/** The manifest format's name and version; bump the version on any incompatible change. */
export const MANIFEST_SCHEMA = "stasis.snapshot/v1";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 hex digest");

/** A path inside the snapshot folder (store/confine.ts): checked here, and on disk again before each use. */
const inSnapshot = z
  .string()
  .refine(isSnapshotRelative, "a relative path inside the snapshot (no '..', no leading '/')");

/**
 * A file a restore puts back where the images expect it, from the copy in the snapshot (`file`). `mode`: the
 * original's permission bits (CRIU checks them); the copy in the snapshot is root's alone. Older snapshots have
 * none: the copy's own mode is used.
 */
const keptFile = (original: z.ZodType<string>) =>
  z.object({ original, file: inSnapshot, mode: z.number().int().min(0).max(0o7777).optional() });

export const FileEntry = z.object({
  /** Relative to the snapshot folder. */
  path: inSnapshot,
  role: z.enum(["image", "weights", "log", "link-remap", "shm", "cache", "other"]),
  size: z.number().int().nonnegative(),
  /** sha256 over the concatenated chunk digests (so it can be computed in parallel). */
  sha256: hex64,
  chunkSize: z.number().int().positive(),
  chunks: z.array(hex64),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const GpuInfo = z.object({
  index: z.number().int(),
  uuid: z.string(),
  name: z.string(),
  memoryMiB: z.number(),
});
export type GpuInfo = z.infer<typeof GpuInfo>;

export const Fingerprint = z.object({
  arch: z.string(),
  kernel: z.string(),
  cpuModel: z.string(),
  /** sha256 of the sorted CPU feature flags: a restored process may use any instruction it found at start-up. */
  cpuFlags: z.string(),
  criuVersion: z.string(),
  gpu: z
    .object({
      driver: z.string(),
      cuda: z.string(),
      models: z.array(z.string()),
      /** The GPUs the captured tree used (UUIDs as at capture). */
      used: z.array(GpuInfo),
      /** Every GPU of the capturing machine: a restore onto other GPUs maps all of them. */
      all: z.array(GpuInfo).optional(),
    })
    .optional(),
  engine: z.object({ name: z.string(), version: z.string() }).optional(),
});
export type Fingerprint = z.infer<typeof Fingerprint>;

export const Canary = z.object({
  method: z.enum(["GET", "POST"]),
  path: z.string().startsWith("/"),
  body: z.string().optional(),
  status: z.number().int(),
  /** sha256 of the response body as recorded at capture. */
  sha256: hex64,
  /** The body itself when small, for showing a mismatch. */
  text: z.string().optional(),
});
export type Canary = z.infer<typeof Canary>;

export const Manifest = z.object({
  schema: z.literal(MANIFEST_SCHEMA),
  name: z.string(),
  createdAt: z.string(),
  stasisVersion: z.string(),
  command: z.object({
    argv: z.array(z.string()).min(1),
    cwd: z.string(),
    /** Only what stasis or the user set on top of the inherited environment (no secrets from the caller's env). */
    env: z.record(z.string()),
  }),
  server: z.object({
    /** Base URL the server listens on, e.g. http://127.0.0.1:8000 */
    url: z.string().url(),
    readyPath: z.string().startsWith("/"),
    /** The paths of stdout/stderr as the images hold them; restore substitutes fresh files for them. */
    stdoutPath: z.string(),
    stderrPath: z.string(),
  }),
  engine: z.object({
    kind: z.enum(["http", "vllm"]),
    canary: Canary,
    /** Engine-specific facts the restore needs (sleep level, weights file, model): contracts/engine-state, checked by
     *  parseManifest. */
    state: z.record(z.unknown()),
  }),
  fingerprint: Fingerprint,
  tree: z.object({
    /** The server's pid at capture; restored, it has the same pid inside its own PID namespace. */
    rootPid: z.number().int().positive(),
    processes: z.number().int().positive(),
    cudaProcesses: z.number().int().nonnegative(),
  }),
  /** The CUDA processes of the tree, by their pid inside the instance's PID namespace. */
  gpu: z
    .object({
      processes: z.array(
        z.object({
          nsPid: z.number().int().positive(),
          gpuBytes: z.number().nonnegative(),
          gpuUuids: z.array(z.string()),
        }),
      ),
      totalBytes: z.number().nonnegative(),
    })
    .optional(),
  criu: z.object({
    options: z.array(z.string()),
    /** The nftables table ("CRIU-<run id>") the dump left to hold the tree's connections until a restore; the
     *  snapshot owns it: a restore unlocks it, `stasis rm` removes it (criu/network-lock.ts). */
    networkLockTable: z.string().optional(),
  }),
  /** The engine's compile caches (one tar each), for `restore --fallback warm`. */
  caches: z
    .array(
      z.object({
        variable: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, "an environment variable's name"),
        dir: z.string(),
        file: inSnapshot,
      }),
    )
    .default([]),
  /** Files CRIU's --link-remap left beside unlinked files; they must exist again at restore. */
  linkRemaps: z.array(keptFile(z.string().refine(isLinkRemapPath, "an absolute path to a file named link_remap.N"))),
  /** Shared-memory files (/dev/shm) the tree had open by name; put back before every restore. */
  shmFiles: z.array(keptFile(z.string().refine(isShmPath, "/dev/shm/NAME, NAME a plain file name"))).default([]),
  /** The TCP addresses the tree listened on at capture ("address:port"), for the restore's TIME_WAIT retry. */
  listeners: z.array(z.string()).default([]),
  /** Local addresses other than loopback the tree's TCP sockets were bound to: a restore needs them on its network
   *  (the host's, or a namespace's loopback, where a namespaced restore adds them). */
  addresses: z.array(z.string().ip()).default([]),
  /** Periodic timerfds the tree had at capture: CRIU may bring them back disarmed (capture/timers.ts). */
  periodicTimers: z
    .array(
      z.object({
        pid: z.number().int(),
        fd: z.number().int(),
        clockid: z.number().int(),
        valueNs: z.number(),
        intervalNs: z.number(),
      }),
    )
    .default([]),
  files: z.array(FileEntry),
  timings: z.record(z.number()),
});
export type Manifest = z.infer<typeof Manifest>;

/**
 * Parses a manifest; a bad one is an E_MANIFEST_INVALID naming the first bad field and what was expected. The engine's
 * state is checked against its kind's contract (contracts/engine-state.ts), loaded only for a kind whose state has
 * fields: the http engine's is any object, which the record above has checked, so its restores never load zod/v4.
 */
export async function parseManifest(text: string, where: string): Promise<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StasisError("E_MANIFEST_INVALID", `${where}: not valid JSON (${(err as Error).message})`, {
      cause: err,
      hint: "the snapshot is damaged; remove it with `stasis rm` and capture again",
    });
  }
  const schema = (raw as { schema?: unknown } | null)?.schema;
  if (typeof schema === "string" && schema !== MANIFEST_SCHEMA) {
    throw new StasisError(
      "E_MANIFEST_INVALID",
      `${where}: manifest schema "${schema}", this stasis reads "${MANIFEST_SCHEMA}"`,
      {
        hint: "capture the snapshot again with this version of stasis",
      },
    );
  }
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) throw invalid(where, parsed.error.issues);
  const { engine } = parsed.data;
  if (engine.kind !== "http") {
    const { ENGINE_STATE } = await import("../contracts/engine-state.js");
    const state = ENGINE_STATE[engine.kind].safeParse(engine.state);
    if (!state.success) {
      const issue = state.error.issues[0]!;
      throw invalid(where, [
        {
          code: "custom",
          path: ["engine", "state", ...issue.path.map(String)],
          message: `not the ${engine.kind} engine's state: ${issue.message}`,
        },
      ]);
    }
  }
  return parsed.data;
}

function invalid(where: string, issues: { code?: string; path: (string | number)[]; message: string }[]): StasisError {
  const issue = issues[0]!;
  return new StasisError("E_MANIFEST_INVALID", `${where}: ${issue.path.join(".") || "(root)"}: ${issue.message}`, {
    hint: "the snapshot is damaged; remove it with `stasis rm` and capture again",
    details: { issues: issues.slice(0, 5) },
  });
}
