/**
 * What `stasis serve` and its clients say to each other: every request body, query and answer as a zod schema.
 * Bodies and queries are parsed with these where they arrive (routes.ts); the answers' schemas are the published
 * contract (schemas/openapi.json, generated from api.ts, which names each route's schemas) and are checked against
 * real answers in the tests, not at run time.
 */
import { z } from "zod/v4";
import type { RestoreOptions } from "../restore/restore.js";
import type { CaptureOptions } from "../capture/capture.js";
import type { StasisEvent } from "../events.js";
import type { RequestKnobs } from "../config/config.js";
import { MEMORY_MODES, PREFETCH_MODES, VERIFY_MODES, WEIGHTS_MODES } from "../restore/modes.js";
import { Instance, InstanceStatus, ParkedView } from "../contracts/instance.js";

/** The schemas the OpenAPI document names (components.schemas), by id. */
export const API_SCHEMAS = z.registry<{ id: string }>();

/**
 * A restore's options as they travel: RestoreOptions without the signal (the connection is the signal) or foreground,
 * and instead of the whole configuration the STASIS_* knobs the client's user set (`requestKnobs`, raw text by
 * variable name: `{"STASIS_WORKING_SET": "0"}`), which the daemon lays over its own settings (`withRequest`).
 */
export type RestoreRequest = Omit<RestoreOptions, "signal" | "foreground" | "config"> & { config?: RequestKnobs };

/** The STASIS_* knobs a client's user set, raw text by variable name; checked where the daemon lays them over. */
const RequestKnobsSchema = z
  .record(z.string(), z.string())
  .describe("STASIS_* settings the client's user set (e.g. STASIS_WORKING_SET: \"0\"), over the daemon's own");

/** What the daemon accepts as a RestoreRequest; parsed once, where the body arrives. */
export const RestoreRequestSchema = z
  .strictObject({
    name: z.string().min(1).describe("the snapshot"),
    verify: z.enum(VERIFY_MODES),
    prefetch: z.enum(PREFETCH_MODES),
    force: z.boolean().default(false),
    gpu: z.string().min(1).optional(),
    fallback: z.literal("warm").optional(),
    readyTimeoutMs: z.number().int().positive(),
    memory: z.enum(MEMORY_MODES).optional(),
    weights: z.enum(WEIGHTS_MODES).optional(),
    publish: z.string().min(1).optional(),
    netns: z.string().min(1).optional(),
    // Checked knob by knob where the daemon lays them over its own (config.ts `withRequest`).
    config: RequestKnobsSchema.optional(),
  })
  .register(API_SCHEMAS, { id: "RestoreRequest" }) satisfies z.ZodType<RestoreRequest, unknown>;

/** POST /v1/swap's body: instance `off` hibernated, snapshot `name` restored as a RestoreRequest says (parking.md). */
export const SwapRequestSchema = RestoreRequestSchema.extend({
  off: z.string().min(1).describe("the serving instance to take off the GPU (an id or a unique prefix)"),
}).register(API_SCHEMAS, { id: "SwapRequest" });
export type SwapRequest = RestoreRequest & { off: string };

/** The request the server is sent (canary, warm-up): GET without a body, POST with one; a path on its address. */
const ServerRequest = z.strictObject({
  method: z.enum(["GET", "POST"]),
  path: z.string().startsWith("/").describe("path and query on the server's address (the ready URL's origin)"),
  body: z.string().optional(),
});

/**
 * A capture's options as they travel: CaptureOptions without the signal (the connection is the signal), and the
 * knobs the client's user set instead of the whole configuration, as with a restore.
 */
export type CaptureRequest = Omit<CaptureOptions, "signal" | "config"> & { config?: RequestKnobs };

export const CaptureRequestSchema = z
  .strictObject({
    name: z.string().min(1).describe("the snapshot to make"),
    argv: z.array(z.string()).min(1).describe("the server's command"),
    cwd: z.string().startsWith("/").describe("the server's working directory (absolute)"),
    env: z.record(z.string(), z.string()).default({}).describe("set on top of the server's environment; recorded"),
    baseEnv: z
      .record(z.string(), z.string())
      .optional()
      .describe("the environment the server starts from instead of the daemon's (the CLI sends its own); not recorded"),
    engine: z.enum(["http", "vllm"]).default("http"),
    readyUrl: z
      .url({ protocol: /^http$/ })
      .describe("answers 2xx once the server is ready; its origin is the server's address"),
    readyTimeoutMs: z.number().int().positive().default(300_000),
    warmup: z.number().int().nonnegative().default(0),
    canary: ServerRequest.optional().describe("needed with engine http; vllm defaults to a greedy completion"),
    warmupRequest: ServerRequest.optional(),
    leaveRunning: z.boolean().default(false),
    allowFullImage: z.boolean().optional(),
    config: RequestKnobsSchema.optional(),
  })
  .register(API_SCHEMAS, { id: "CaptureRequest" }) satisfies z.ZodType<CaptureRequest, unknown>;

/** POST /v1/weights/pin's body. */
export const PinRequestSchema = z.strictObject({ name: z.string().min(1) }).register(API_SCHEMAS, { id: "PinRequest" });

/** GET /v1/instances's query. */
export const ListQuerySchema = z.strictObject({
  all: z.enum(["true", "false"]).default("false").describe("true: also instances whose process has ended"),
});

/** DELETE /v1/instances/{id}'s query. */
export const StopQuerySchema = z.strictObject({
  graceMs: z
    .string()
    .regex(/^\d+$/, "expected whole milliseconds")
    .default("10000")
    .describe("milliseconds between SIGTERM and SIGKILL"),
});

export const InstanceIdSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{1,32}$/, "expected an instance id (hex) or a unique prefix of one"),
});

export const ErrorSchema = z
  .looseObject({
    code: z.string().regex(/^E_[A-Z_]+$/),
    message: z.string(),
    hint: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
    cause: z.unknown().optional(),
  })
  .register(API_SCHEMAS, { id: "Error" });
export const ErrorAnswer = z.strictObject({ error: ErrorSchema }).register(API_SCHEMAS, { id: "ErrorAnswer" });

const t = z.number().describe("ms since the operation started");
/** The events of src/events.ts as they travel. */
export const EventSchema = z
  .discriminatedUnion("type", [
    z.strictObject({ type: z.literal("phase-start"), phase: z.string(), t }),
    z.strictObject({
      type: z.literal("phase-end"),
      phase: z.string(),
      t,
      ms: z.number(),
      ok: z.boolean(),
      bytes: z.number().optional(),
      detail: z.record(z.string(), z.unknown()).optional(),
    }),
    z.strictObject({
      type: z.literal("progress"),
      phase: z.string(),
      t,
      done: z.number(),
      total: z.number(),
      unit: z.enum(["bytes", "items"]),
    }),
    z.strictObject({
      type: z.literal("process-exit"),
      t,
      pid: z.number().int(),
      command: z.string(),
      code: z.number().int().nullable(),
      signal: z.string().nullable(),
    }),
    z.strictObject({ type: z.literal("log"), t, level: z.enum(["info", "warn"]), message: z.string() }),
    z.strictObject({
      type: z.literal("waiting"),
      phase: z.string(),
      t,
      elapsedMs: z.number(),
      url: z.string(),
      last: z.string(),
      logPath: z.string().optional(),
    }),
  ])
  .register(API_SCHEMAS, { id: "Event" });
// The schema says what events.ts says, no more and no less: a new event type fails the build until it is here too.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const eventsMatch: Same<z.infer<typeof EventSchema>, StasisEvent> = true;
void eventsMatch;

const phase = z.looseObject({
  name: z.string(),
  startMs: z.number(),
  endMs: z.number(),
  ms: z.number(),
  ok: z.boolean(),
  bytes: z.number().optional(),
  gbps: z.number().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});

export const InstanceSchema = Instance.register(API_SCHEMAS, { id: "Instance" });
export const InstanceStatusSchema = InstanceStatus.register(API_SCHEMAS, { id: "InstanceStatus" });

export const RestoreResultSchema = z
  .looseObject({
    instance: InstanceSchema,
    snapshot: z.string(),
    readyMs: z.number(),
    phases: z.array(phase),
    reads: z.looseObject({ bytesRead: z.number(), bytesAlreadyResident: z.number(), bytesVerified: z.number() }),
    fallback: z.looseObject({ reason: z.string(), canaryMatched: z.boolean() }).optional(),
    taken: z
      .looseObject({ id: z.string(), hibernated: z.boolean(), parkMs: z.number() })
      .optional()
      .describe("the parked instance this restore took (docs/parking.md)"),
  })
  .register(API_SCHEMAS, { id: "RestoreResult" });

/** POST /v1/park's body: keep `count` instances of snapshot `name` parked (docs/parking.md). */
export const ParkRequestSchema = z
  .strictObject({ name: z.string().min(1), count: z.number().int().min(0).default(1) })
  .register(API_SCHEMAS, { id: "ParkRequest" });
export type ParkRequest = z.infer<typeof ParkRequestSchema>;

/** POST /v1/hibernate's and /v1/parked/stop's body. */
export const InstanceRequestSchema = z
  .strictObject({ id: z.string().min(1) })
  .register(API_SCHEMAS, { id: "InstanceRequest" });

/** A parked instance as the daemon describes it. */
export const ParkedViewSchema = ParkedView.register(API_SCHEMAS, { id: "ParkedView" });
export type ParkedView = z.infer<typeof ParkedView>;
export const ParkedAnswer = z.strictObject({ parked: z.array(ParkedViewSchema) });
export const HibernatedAnswer = z.strictObject({
  parked: ParkedViewSchema,
  /** Where the hibernate's time went: engine-sleep, the CUDA checkpoint, stop-tree. */
  phases: z.array(phase),
});
export type Hibernated = z.infer<typeof HibernatedAnswer>;
export const ParkedStopAnswer = z.strictObject({ stopped: z.boolean() });

export const SwapResultSchema = z
  .looseObject({
    restored: RestoreResultSchema.describe("the restore of the snapshot coming on; its readyMs is from its own start"),
    off: z.looseObject({
      id: z.string(),
      hibernated: ParkedViewSchema.optional().describe("the instance gone off, hibernated: a restore of it wakes it"),
      phases: z.array(phase).describe("the hibernate's: engine-sleep, the CUDA checkpoint, stop-tree"),
      ended: z.string().optional().describe("why the instance was ended instead: its hibernate failed after the sleep"),
    }),
    handOverMs: z
      .number()
      .describe("from the request: the engine going off asleep, its GPU memory free for the other's wake"),
    readyMs: z.number().describe("from the request: the snapshot coming on ready, its canary matched"),
  })
  .register(API_SCHEMAS, { id: "SwapResult" });
export type SwapAnswer = z.infer<typeof SwapResultSchema>;

export const CaptureResultSchema = z
  .looseObject({
    name: z.string(),
    dir: z.string(),
    manifest: z.looseObject({ schema: z.string(), name: z.string() }).describe("the snapshot's manifest.json"),
    instance: InstanceSchema.optional().describe("with leaveRunning: the original server, still serving"),
    phases: z.array(phase),
  })
  .register(API_SCHEMAS, { id: "CaptureResult" });

/** One line of a streamed answer (restore, capture): events, then one result or one error. */
const lines = (result: z.ZodType, id: string) =>
  z
    .union([z.strictObject({ event: EventSchema }), z.strictObject({ result }), ErrorAnswer])
    .register(API_SCHEMAS, { id });
export const RestoreLine = lines(RestoreResultSchema, "RestoreLine");
export const CaptureLine = lines(CaptureResultSchema, "CaptureLine");
export const SwapLine = lines(SwapResultSchema, "SwapLine");

export type DaemonLine = { event: StasisEvent } | { result: unknown } | { error: Record<string, unknown> };

export const HealthAnswer = z
  .strictObject({ ok: z.literal(true), pid: z.number().int(), version: z.string() })
  .register(API_SCHEMAS, { id: "Health" });
export const InstancesAnswer = z
  .strictObject({ instances: z.array(InstanceStatusSchema) })
  .register(API_SCHEMAS, { id: "Instances" });
export const StopAnswer = z
  .strictObject({ id: z.string(), result: z.enum(["terminated", "killed", "gone"]) })
  .register(API_SCHEMAS, { id: "Stopped" });
export const ReleasedAnswer = z
  .strictObject({ released: z.number().int().describe("keepers that held weights") })
  .register(API_SCHEMAS, { id: "Released" });
export const PinnedAnswer = z
  .strictObject({ pinned: z.strictObject({ bytes: z.number(), seconds: z.number(), already: z.boolean() }) })
  .register(API_SCHEMAS, { id: "Pinned" });
export const OpenApiAnswer = z
  .looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) })
  .register(API_SCHEMAS, { id: "OpenApiDocument" });
