/**
 * The shape of every command's `--json` document, `stasis.<command>/v1`. The published JSON Schemas
 * (schemas/stasis.<command>.v1.json) are generated from these (`node scripts/gen-schemas.mjs`); a test checks they
 * are current, and another validates real outputs of each command against the published files.
 */
import { z } from "zod/v4";
import { bytes, error, fileRange, manifest, ms, phase } from "./_parts.js";
import { Instance, InstanceStatus, ParkedView } from "../../contracts/instance.js";

const doc = <T extends z.core.$ZodLooseShape>(command: string, shape: T) =>
  z.looseObject({ schema: z.literal(`stasis.${command}/v1`), ...shape });

/** What a pull did (`stasis pull`, and `stasis restore s3://...` before its restore). */
const pulled = {
  snapshot: z.string(),
  remote: z.string(),
  snapshotDir: z.string(),
  pulled: z.boolean(),
  chunks: z.number().int(),
  fetched: z.number().int(),
  fromCache: z.number().int(),
  bytesFetched: bytes,
  bytesFromCache: bytes,
  bytes,
  durationMs: ms,
  streamed: z
    .looseObject({ transferStartMs: ms, criuFilesMs: ms.optional(), allFilesMs: ms.optional() })
    .optional()
    .describe("when the transfer began, the files CRIU reads were whole, every file (ms, the restore's phases' clock)"),
};

const restored = {
  snapshot: z.string(),
  instance: Instance,
  readyMs: ms,
  phases: z.array(phase),
  reads: z.looseObject({ bytesRead: bytes, bytesAlreadyResident: bytes, bytesVerified: bytes }),
  fallback: z.looseObject({ reason: z.string(), canaryMatched: z.boolean() }).optional(),
  via: z.enum(["daemon", "process"]),
  taken: z
    .looseObject({ id: z.string(), hibernated: z.boolean(), parkMs: ms })
    .optional()
    .describe("set when a parked instance served the restore (`stasis park`, `stasis hibernate`): readyMs is the take's"),
  pull: z.looseObject(pulled).optional().describe("restore s3://...: what the pull before the restore did"),
  exit: z
    .looseObject({
      code: z.number().int().optional(),
      signal: z.number().int().optional(),
      lost: z.boolean().optional(),
    })
    .optional()
    .describe("restore --foreground: how the server ended (stasis exits with code, or 128 + signal)"),
};

export const SCHEMAS = {
  error: doc("error", { error }),
  doctor: doc("doctor", {
    ok: z.boolean(),
    checks: z.array(
      z.looseObject({
        name: z.string(),
        status: z.enum(["pass", "warn", "fail"]),
        detail: z.string(),
        fix: z.string().optional(),
      }),
    ),
    settings: z.array(
      z.looseObject({
        knob: z.string().describe("the STASIS_* variable"),
        value: z.union([z.string(), z.number(), z.boolean(), z.null()]).describe("effective; null: the built-in choice"),
        source: z.enum(["default", "env", "request"]),
        doc: z.string(),
      }),
    ),
  }),
  capture: doc("capture", {
    snapshot: z.string(),
    snapshotDir: z.string(),
    instance: Instance.optional(),
    manifest,
    phases: z.array(phase),
    via: z.enum(["daemon", "process"]).optional().describe("who captured: a running `stasis serve`, or this process"),
  }),
  restore: doc("restore", restored),
  logs: doc("logs", {
    instance: z.string(),
    snapshot: z.string(),
    running: z.boolean(),
    logs: z.array(z.looseObject({ stream: z.enum(["stderr", "stdout", "criu"]), path: z.string(), text: z.string() })),
  }),
  ps: doc("ps", {
    instances: z.array(InstanceStatus),
    via: z.enum(["daemon", "process"]).optional(),
  }),
  stop: doc("stop", {
    stopped: z.array(z.looseObject({ id: z.string(), result: z.string() })),
    via: z.enum(["daemon", "process"]).optional(),
  }),
  park: doc("park", { parked: z.array(ParkedView) }),
  hibernate: doc("hibernate", { parked: ParkedView, phases: z.array(phase) }),
  swap: doc("swap", {
    restored: z.looseObject(restored).omit({ via: true }).describe("the restore of the snapshot coming on"),
    off: z.looseObject({
      id: z.string(),
      hibernated: ParkedView.optional().describe("the instance gone off, hibernated: a restore of its snapshot wakes it"),
      phases: z.array(phase).describe("its hibernate's: engine-sleep, the CUDA checkpoint, stop-tree"),
      ended: z.string().optional().describe("why it was ended instead: its hibernate failed after the sleep"),
    }),
    handOverMs: ms.describe("from the request: the engine going off asleep, its GPU memory free for the other's wake"),
    readyMs: ms.describe("from the request: the snapshot coming on serving, its canary matched"),
  }),
  ls: doc("ls", {
    snapshots: z.array(
      z.looseObject({
        name: z.string(),
        createdAt: z.string().optional(),
        engine: z.enum(["http", "vllm"]).optional(),
        bytes: bytes.optional(),
        processes: z.number().int().optional(),
        cudaProcesses: z.number().int().optional(),
        coldStartMs: ms.optional(),
        command: z.string().optional(),
        url: z.string().optional().describe("s3://bucket/prefix/name: set when listing a store (`stasis ls s3://...`)"),
        error: z.string().optional().describe("set for a damaged snapshot (or one a push left incomplete), instead of the rest"),
      }),
    ),
  }),
  inspect: doc("inspect", {
    snapshot: z.string(),
    snapshotDir: z.string(),
    manifest,
    verified: z.looseObject({ bytes }).optional(),
  }),
  push: doc("push", {
    snapshot: z.string(),
    remote: z.string().describe("s3://bucket/prefix/name"),
    chunks: z.number().int().describe("distinct chunks of the snapshot"),
    uploaded: z.number().int(),
    skipped: z.number().int().describe("chunks the bucket had already"),
    bytesUploaded: bytes,
    bytesSkipped: bytes,
    durationMs: ms,
  }),
  pull: doc("pull", pulled),
  gc: doc("gc", {
    remote: z.string().describe("s3://bucket/prefix"),
    dryRun: z.boolean(),
    snapshots: z.number().int(),
    abandoned: z.array(z.string()).describe("pushes that never finished, older than the grace period"),
    chunks: z.number().int(),
    referenced: z.number().int(),
    young: z.number().int().describe("unused chunks kept: younger than the grace period"),
    removed: z.number().int().describe("chunks removed, or that would be (dry run)"),
    bytesRemoved: bytes,
  }),
  rm: doc("rm", { removed: z.array(z.string()), instancesStillRunning: z.array(z.string()) }),
  prefetch: doc("prefetch", {
    snapshot: z.string().optional(),
    paths: z.array(z.string()),
    files: z.number().int(),
    bytesTotal: bytes,
    bytesRead: bytes,
    bytesAlreadyResident: bytes,
    bytesVerified: bytes,
    durationMs: ms,
    gbps: z.number().nonnegative(),
    strategy: z.enum(["populate", "read", "fadvise"]),
    concurrency: z.number().int(),
    daemonPin: z
      .union([
        z.looseObject({ pinned: z.looseObject({ bytes, already: z.boolean(), durationMs: ms }) }),
        z.looseObject({ notPinned: z.string() }),
      ])
      .optional(),
  }),
  residency: doc("residency", {
    snapshot: z.string().optional(),
    snapshotDir: z.string().optional(),
    files: z.array(
      z.looseObject({ ...fileRange, pages: z.number().int(), residentPages: z.number().int(), residentBytes: bytes }),
    ),
    total: z.looseObject({
      files: z.number().int(),
      size: bytes,
      residentBytes: bytes,
      pages: z.number().int(),
      residentPages: z.number().int(),
    }),
  }),
  evict: doc("evict", {
    snapshot: z.string().optional(),
    snapshotDir: z.string().optional(),
    files: z.array(z.looseObject({ ...fileRange, residentBytesBefore: bytes, residentBytesAfter: bytes })),
    total: z.looseObject({
      files: z.number().int(),
      size: bytes,
      residentBytesBefore: bytes,
      residentBytesAfter: bytes,
    }),
  }),
  serve: doc("serve", {
    socket: z.string(),
    tcp: z.looseObject({ host: z.string(), port: z.number().int() }).optional(),
    restores: z.number().int(),
    captures: z.number().int().optional(),
  }),
  bench: doc("bench", {
    date: z.string(),
    snapshot: z.string(),
    command: z.string(),
    repeat: z.number().int(),
    strategies: z.array(
      z.looseObject({
        strategy: z.enum(["cold", "warm", "restore-hot", "restore-cold"]),
        runs: z.array(z.looseObject({})),
        medianReadyMs: ms,
        medianFirstTokenMs: ms,
        phases: z.array(z.looseObject({ name: z.string(), durationMs: ms })),
      }),
    ),
    speedup: z.number().optional(),
  }),
  demo: doc("demo", {
    snapshot: z.string(),
    coldStartMs: ms,
    captureMs: ms,
    restoreMs: ms,
    speedup: z.number(),
    question: z.string(),
    answerBeforeCapture: z.string(),
    answerAfterRestore: z.string(),
    match: z.boolean(),
  }),
} as const;

export type SchemaName = keyof typeof SCHEMAS;

/** The JSON Schema (draft 2020-12) published for `name`, as written to schemas/stasis.<name>.v1.json. */
export function jsonSchema(name: SchemaName): Record<string, unknown> {
  const generated = z.toJSONSchema(SCHEMAS[name], { target: "draft-2020-12" }) as Record<string, unknown>;
  return { $id: `stasis.${name}.v1.json`, title: `stasis.${name}/v1`, ...generated };
}
