/**
 * The daemon's HTTP server: one fastify app per listener (the unix socket; TCP with a token), each registering every
 * route of api.ts with its handler below. The handlers are thin: they parse what came (protocol.ts's schemas), call
 * the same functions the CLI calls (src/commands/, capture(), restore()) and answer what those return. Captures and
 * restores stream their events as NDJSON lines; the same lines feed the metrics and the JSON log.
 *
 * fastify rather than node:http by hand: why: docs/decisions/0014-daemon-http.md.
 */
import { PassThrough } from "node:stream";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { z } from "zod/v4";
import { StasisError, asStasisError, httpStatus } from "../errors.js";
import { Events, recordTimeline } from "../events.js";
import { VERSION } from "../version.js";
import { API, type RouteName, type RouteSpec } from "./api.js";
import type { DaemonLine } from "./protocol.js";
import type { DaemonMetrics, Operation } from "./metrics.js";
import type { DaemonLog } from "./log.js";
import { checkBearer } from "./auth.js";
import { openApiDocument } from "./openapi.js";
import type { weightsKeepers } from "../engines/weights-keepers.js";
import type { CudaLease } from "../restore/restore.js";
import { ps } from "../commands/ps.js";
import { findInstance } from "../instances/instances.js";
import { stop } from "../commands/stop.js";
// Loaded with the daemon, not on the first request: that is the point of it.
import { pinJobFor, restore, type RestoreOptions, type RestoreResult } from "../restore/restore.js";
import { checkSwap, swap } from "../restore/swap.js";
import { capture } from "../capture/capture.js";
import { take } from "../restore/take.js";
import type { Parked } from "../restore/park.js";
import type { ParkedPool } from "./parked.js";
import type { ParkedView } from "./protocol.js";
import { describeRequest, withRequest, type RequestKnobs, type Settings } from "../config/config.js";

/** What every listener of one daemon shares. */
export interface DaemonContext {
  /** The daemon's own log lines. */
  events: Events;
  log: DaemonLog;
  metrics: DaemonMetrics;
  cuda: { lease: () => Promise<CudaLease> };
  keepers?: ReturnType<typeof weightsKeepers>;
  counts: { requests: number; restores: number; captures: number };
  /** The parked instances this daemon holds (docs/parking.md). */
  pool: ParkedPool;
  /** The daemon's own settings; a request's knobs are laid over them for that request (`forRequest`). */
  settings: Settings;
}

/** The most a request body may hold: a RestoreRequest is a few hundred bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;
interface Input<R extends RouteSpec> {
  params: Parsed<R["params"]>;
  query: Parsed<R["query"]>;
  body: Parsed<R["body"]>;
  reply: FastifyReply;
  request: FastifyRequest;
}
type Handler<R extends RouteSpec> = (input: Input<R>, ctx: DaemonContext) => Promise<unknown>;

let document: Record<string, unknown> | undefined;

const HANDLERS: { [K in RouteName]: Handler<(typeof API)[K]> } = {
  health: async () => ({ ok: true, pid: process.pid, version: VERSION }),
  listInstances: async ({ query }) => ({ instances: await ps({ all: query.all === "true" }) }),
  stopInstance: async ({ params, query }, ctx) => {
    // A parked instance this daemon holds is ended by its pool, which then keeps one fewer parked.
    const inst = await findInstance(params.id);
    if (inst.status === "parked" && (await ctx.pool.stop(inst.id))) return { id: inst.id, result: "killed" };
    return (await stop({ ids: [inst.id], all: false, graceMs: Number(query.graceMs) }))[0];
  },
  capture: async ({ body, reply, request }, ctx) => {
    const { config: knobs, ...options } = body;
    const config = forRequest(ctx, knobs);
    ctx.counts.captures++;
    ctx.events.log(`capture "${body.name}"${fromRequest(knobs)}`);
    return streamOperation(reply, ctx, "capture", request.id, async (events, signal) => {
      const r = await capture({ ...options, config, signal }, events);
      ctx.events.log(`captured "${body.name}" in ${((r.manifest.timings.totalMs ?? 0) / 1000).toFixed(1)} s`);
      return r;
    });
  },
  restore: async ({ body, reply, request }, ctx) => {
    const { config: knobs, ...options } = body;
    const config = forRequest(ctx, knobs);
    ctx.counts.restores++;
    ctx.events.log(`restore "${body.name}"${fromRequest(knobs)}`);
    return streamOperation(reply, ctx, "restore", request.id, async (events, signal) => {
      const r = await restoreOrTake(ctx, { ...options, config, signal }, events);
      ctx.events.log(`restored "${body.name}" as instance ${r.instance.id} in ${r.readyMs.toFixed(0)} ms`);
      return r;
    });
  },
  swap: async ({ body, reply, request }, ctx) => {
    const { config: knobs, off, ...options } = body;
    const config = forRequest(ctx, knobs);
    ctx.counts.restores++;
    ctx.events.log(`swap: instance ${off} off the GPU, "${body.name}" on${fromRequest(knobs)}`);
    return streamOperation(reply, ctx, "swap", request.id, async (events, signal) => {
      const id = await checkSwap(off, body.name);
      const hib = hibernateStream(ctx, request.id);
      try {
        const r = await swap(
          {
            off: (handOver) => hib.follow(ctx.pool.hibernate(id, hib.events, { handOver })),
            on: (gpuFree) => restoreOrTake(ctx, { ...options, config, signal }, events, gpuFree),
          },
          events,
          id,
        );
        const { hibernated, ...off } = r.off;
        const answer = {
          ...r,
          off: { ...off, ...(hibernated ? { hibernated: view(hibernated) } : {}), phases: hib.phases() },
        };
        ctx.events.log(
          `swapped instance ${id} off the GPU, "${body.name}" on as instance ${r.restored.instance.id} in ` +
            `${r.readyMs.toFixed(0)} ms (${id}'s engine asleep at ${r.handOverMs.toFixed(0)} ms)`,
        );
        return answer;
      } finally {
        hib.stop();
      }
    });
  },
  releaseWeights: async (_, ctx) => {
    const released = (await ctx.keepers?.release()) ?? 0;
    if (released > 0)
      ctx.events.log(`released the pinned weights of ${released} weights keeper(s); the keepers stay up, holding none`);
    return { released };
  },
  pinWeights: async ({ body: { name } }, ctx) => {
    if (!ctx.keepers)
      throw new StasisError("E_USAGE", "this stasis serve does not pin weights", {
        hint: "start it with --pin-weights",
      });
    const pinned = await ctx.keepers.pin(await pinJobFor(name)).catch((err: Error) => {
      throw err instanceof StasisError
        ? err
        : new StasisError("E_DAEMON", err.message, { hint: "the next restore reads the weights file instead" });
    });
    const how = pinned.already ? ", already pinned" : ` in ${pinned.seconds.toFixed(2)} s`;
    ctx.events.log(`pinned the weights of "${name}" (${(pinned.bytes / 1e9).toFixed(2)} GB${how})`);
    return { pinned };
  },
  park: async ({ body: { name, count } }, ctx) => ({ parked: (await ctx.pool.setTarget(name, count)).map(view) }),
  hibernate: async ({ body: { id }, request }, ctx) => {
    const hib = hibernateStream(ctx, request.id);
    try {
      const p = await hib.follow(ctx.pool.hibernate(id, hib.events));
      ctx.events.log(`hibernated instance ${p.record.id} ("${p.snapshot}") in ${p.parkMs.toFixed(0)} ms`);
      return { parked: view(p), phases: hib.phases() };
    } finally {
      hib.stop();
    }
  },
  stopParked: async ({ body: { id } }, ctx) => ({ stopped: await ctx.pool.stop(id) }),
  openapi: async () => (document ??= openApiDocument()),
  metrics: async ({ reply }, ctx) => {
    void reply.type(ctx.metrics.contentType);
    return ctx.metrics.text();
  },
};

/**
 * A restore through the daemon: a take of the snapshot's parked instance where there is one (only the GPU's part is
 * left to do), else a restore. In a swap, `gpuFree`: either waits for it where it needs the GPU's memory (take.ts,
 * restore.ts), and does the rest (a take's resume, a restore's CRIU) beside the other server's sleep.
 */
async function restoreOrTake(
  ctx: DaemonContext,
  opts: RestoreOptions,
  events: Events,
  gpuFree?: Promise<void>,
): Promise<RestoreResult> {
  const deps = { cudaDriver: ctx.cuda.lease, ...(ctx.keepers ? { stager: ctx.keepers.stage } : {}) };
  return ctx.pool.take(
    opts.name,
    (p) => take(p, { ...opts, ...(gpuFree ? { gpuFree } : {}) }, events, deps),
    () => restore(opts, events, { ...deps, ...(gpuFree ? { gpuFree } : {}) }),
  );
}

/**
 * A hibernate's own event stream (a swap's too), as a restore's: the daemon's log and metrics see its phases, result
 * and failure (as the operation "hibernate": `follow` the hibernate), the answer its timeline; `stop` ends it.
 */
function hibernateStream(ctx: DaemonContext, request: string) {
  const report = (line: DaemonLine) => observe(ctx, "hibernate", request, line);
  const events = new Events();
  events.on((event) => report({ event }));
  const timeline = recordTimeline(events);
  const phases = () => timeline.phases;
  const follow = (hibernating: Promise<Parked>) =>
    hibernating.then(
      (p) => (report({ result: { parked: view(p), phases: phases() } }), p),
      (err: unknown) => {
        report({ error: asStasisError(err).toJSON() });
        throw err;
      },
    );
  return { events, follow, phases, stop: () => timeline.stop() };
}

/**
 * The daemon's settings with the knobs a request set laid over them, for that request; a knob a request may not set,
 * or a bad value, is E_USAGE (400) before any work starts.
 */
function forRequest(ctx: DaemonContext, knobs: RequestKnobs | undefined): Settings["config"] {
  return withRequest(ctx.settings, knobs).config;
}

/** The log's note of the knobs a request set (none: nothing). */
function fromRequest(knobs: RequestKnobs | undefined): string {
  const text = describeRequest(knobs);
  return text ? ` with ${text} from the request` : "";
}

/** What the daemon does with each line of an operation (its events, then its result or its error): its metrics,
 *  and its JSON log, each event marked with the request and the operation. */
function observe(ctx: DaemonContext, operation: Operation, request: string, line: DaemonLine): void {
  ctx.metrics.follow(operation, line);
  if ("event" in line) ctx.log.event(line.event, { request, operation });
}

/**
 * Runs a capture or restore for one request and answers with its stream: each event as a line as it happens, then
 * one result or error line. A client that goes away aborts the operation (it unwinds as on Ctrl-C).
 */
function streamOperation(
  reply: FastifyReply,
  ctx: DaemonContext,
  operation: Operation,
  request: string,
  run: (events: Events, signal: AbortSignal) => Promise<unknown>,
): FastifyReply {
  const abort = new AbortController();
  reply.raw.on("close", () => abort.abort(new Error("the client went away")));
  const out = new PassThrough();
  out.on("error", () => undefined); // a client gone mid-stream: the abort above is what matters
  const send = (line: DaemonLine) => {
    observe(ctx, operation, request, line);
    if (!out.destroyed) out.write(JSON.stringify(line) + "\n");
  };
  const events = new Events();
  events.on((event) => send({ event }));
  void run(events, abort.signal)
    .then(
      (result) => send({ result }),
      (err) => {
        const e = asStasisError(err);
        ctx.events.log(`${operation} failed: ${e.code}: ${e.message}`, "warn");
        send({ error: e.toJSON() });
      },
    )
    .finally(() => out.end());
  return reply.type("application/x-ndjson").send(out);
}

/** A fastify app with every route of api.ts; `token`: every request must carry it (TCP). */
export function buildApp(ctx: DaemonContext, via: "unix" | "tcp", token?: string): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // A request's head and body must arrive within 30 s; answers (a restore's stream) take as long as they take.
    requestTimeout: 30_000,
    genReqId: () => `r${++ctx.counts.requests}`,
  });
  // Bodies are read as text and parsed by the route's schema, whatever content-type the client sent: clients of the
  // hand-written daemon before this one sent none, or curl's form type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));
  app.addHook("onRequest", async (request, reply) => {
    void reply.header("x-request-id", request.id);
    if (token === undefined) return;
    const refused = checkBearer(request.headers.authorization, token);
    if (refused) return reply.code(401).header("www-authenticate", "Bearer").send({ error: refused.toJSON() });
  });
  app.addHook("onResponse", async (request, reply) => {
    const remote = via === "tcp" ? request.ip : undefined;
    ctx.log.request({
      id: request.id,
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: reply.elapsedTime,
      via,
      ...(remote ? { remote } : {}),
    });
  });
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    const e = fromFastify(err);
    return reply.code(httpStatus(e.code)).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new StasisError("E_USAGE", `no ${request.method} ${request.url.split("?")[0]} here`, {
      hint: "GET /v1/openapi.json (or docs/api.md) lists the daemon's routes",
    });
    return reply.code(404).send({ error: e.toJSON() });
  });
  for (const name of Object.keys(API) as RouteName[]) {
    const spec: RouteSpec = API[name];
    const handler = HANDLERS[name] as Handler<RouteSpec>;
    app.route({
      method: spec.method,
      url: spec.path.replace(/\{(\w+)\}/g, ":$1"),
      handler: async (request, reply) => {
        const what = `${spec.method} ${spec.path}`;
        const input = {
          params: spec.params && parse(spec.params, request.params, `${what}: path`),
          query: spec.query && parse(spec.query, request.query ?? {}, `${what}: query`),
          body: spec.body && parse(spec.body, json(request.body, what), `${what}: body`),
          reply,
          request,
        } as Input<RouteSpec>;
        return handler(input, ctx);
      },
    });
  }
  return app;
}

/** The JSON of a body read as text; E_USAGE when it is not JSON. */
function json(body: unknown, what: string): unknown {
  try {
    return JSON.parse(typeof body === "string" ? body : "");
  } catch {
    throw new StasisError("E_USAGE", "the request body is not JSON", {
      hint: `${what} takes a JSON body (docs/api.md)`,
    });
  }
}

/** `value` checked against `schema`; E_USAGE naming the first field that is wrong and what was expected. */
function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new StasisError("E_USAGE", `bad request: ${issue.path.join(".") || "body"}: ${issue.message}`, {
    hint: `${where} takes ${fields(schema)} (docs/api.md, schemas/openapi.json)`,
  });
}

/** An object schema's fields for a hint: `{name, verify, force?}` (? where optional). */
function fields(schema: z.ZodType): string {
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape) return "JSON";
  const names = Object.entries(shape).map(([k, v]) => (v.safeParse(undefined).success ? `${k}?` : k));
  return `{${names.join(", ")}}`;
}

/** fastify's own refusals (a body over the limit, a malformed header) as StasisErrors. */
function fromFastify(err: FastifyError): StasisError {
  if (err instanceof StasisError) return err;
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return new StasisError(
      "E_TOO_LARGE",
      `the request body is over ${MAX_BODY_BYTES} bytes; the daemon takes at most ${MAX_BODY_BYTES} bytes`,
      {
        hint: "send a JSON request (docs/api.md), a few hundred bytes",
        details: { maxBytes: MAX_BODY_BYTES },
      },
    );
  }
  if (typeof err.statusCode === "number" && err.statusCode < 500)
    return new StasisError("E_USAGE", err.message, { hint: "docs/api.md" });
  return asStasisError(err);
}

/** A parked instance as the API describes it. */
function view(p: Parked): ParkedView {
  const r = p.record;
  return {
    id: r.id,
    snapshot: p.snapshot,
    pid: r.pid,
    url: r.url,
    hibernated: p.hibernated !== undefined,
    parkMs: Math.round(p.parkMs * 10) / 10,
    parkedAt: r.parked?.parkedAt ?? r.createdAt,
  };
}
