/**
 * `stasis serve`: stasis resident on a unix socket, so that a restore starts with its code loaded instead of
 * paying Node's start-up and module loading each time (why: docs/decisions/0010-serve-daemon.md). The CLI's
 * `restore` goes through it whenever it answers (see client.ts); the work is the same `restore()` function.
 * Protocol: protocol.ts. The socket is root's alone (0600): whoever can use it can restore any snapshot.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { chmod, lstat, unlink } from "node:fs/promises";
import { StasisError, asStasisError, httpStatus } from "../errors.js";
import { Events } from "../events.js";
import { paths } from "../home.js";
import { VERSION } from "../version.js";
import type { z } from "zod";
import { PinRequestSchema, RestoreRequestSchema, type RestoreRequest } from "./protocol.js";
import { CudaDriver } from "../cuda/driver.js";
import { warmCudaWorker } from "./warm-cuda.js";
import { weightsKeepers } from "../engines/weights-keepers.js";
import { prepareHome } from "../store/home-guard.js";
import { withUmask } from "../proc/run.js";
import { describeRequest, withRequest, type Settings } from "../config/config.js";
// Loaded with the daemon, not on the first request: that is the point of it.
import { ownCudaDriver, pinJobFor, restore } from "../restore/restore.js";

export interface ServeOptions {
  socket?: string;
  signal?: AbortSignal;
  /** Keep the weights of the snapshots restored in pinned host memory, and a stager warm (weights-keepers.ts). */
  pinWeights?: boolean;
  /** Keep one CUDA worker warm for all restores (warm-cuda.ts) instead of one per restore. */
  warmCuda?: boolean;
  /** The daemon's own settings, read where it started; a request's knobs are laid over them for that restore. */
  settings: Settings;
}

/** Serves until `signal` fires; then stops taking requests, lets running restores finish and removes the socket. */
export async function serve(opts: ServeOptions, events: Events): Promise<{ socket: string; restores: number }> {
  await prepareHome((m) => events.log(m, "warn"));
  const socket = opts.socket ?? paths.daemonSocket();
  await claimSocket(socket);
  // Opt-in (--warm-cuda) until it has been measured on a GPU: otherwise each restore starts its own worker, as
  // in-process restores do, off the critical path beside CRIU.
  const cuda = opts.warmCuda
    ? warmCudaWorker(
        () => CudaDriver.start(),
        (m) => events.log(m),
      )
    : { lease: ownCudaDriver, close: async () => {} };
  const keepers = opts.pinWeights
    ? weightsKeepers((m, level) => events.log(m, level), opts.settings.config.pinWeightsMax)
    : undefined;
  let restores = 0;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err) => events.log(`request failed: ${asStasisError(err).message}`, "warn"));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === "GET" && req.url === "/v1/health")
      return reply(res, 200, { ok: true, pid: process.pid, version: VERSION });
    if (req.method === "POST" && req.url === "/v1/weights/release") {
      const released = (await keepers?.release()) ?? 0;
      if (released > 0)
        events.log(`released the pinned weights of ${released} weights keeper(s); the keepers stay up, holding none`);
      return reply(res, 200, { released });
    }
    if (req.method === "POST" && req.url === "/v1/weights/pin") {
      try {
        const { name } = parseBody(
          await readBody(req),
          PinRequestSchema,
          'POST /v1/weights/pin takes {"name": SNAPSHOT}',
        );
        if (!keepers)
          throw new StasisError("E_USAGE", "this stasis serve does not pin weights", {
            hint: "start it with --pin-weights",
          });
        const pinned = await keepers.pin(await pinJobFor(name)).catch((err: Error) => {
          throw err instanceof StasisError
            ? err
            : new StasisError("E_DAEMON", err.message, { hint: "the next restore reads the weights file instead" });
        });
        events.log(
          `pinned the weights of "${name}" (${(pinned.bytes / 1e9).toFixed(2)} GB${pinned.already ? ", already pinned" : ` in ${pinned.seconds.toFixed(2)} s`})`,
        );
        return reply(res, 200, { pinned });
      } catch (err) {
        const e = asStasisError(err);
        return reply(res, httpStatus(e.code), { error: e.toJSON() });
      }
    }
    if (req.method !== "POST" || req.url !== "/v1/restore")
      return reply(res, 404, { error: new StasisError("E_USAGE", `no ${req.method} ${req.url} here`).toJSON() });
    let body: RestoreRequest;
    let settings: Settings;
    try {
      body = parseBody(
        await readBody(req),
        RestoreRequestSchema,
        "POST /v1/restore takes a JSON RestoreRequest (src/serve/protocol.ts)",
      );
      settings = withRequest(opts.settings, body.config);
    } catch (err) {
      const e = asStasisError(err);
      return reply(res, httpStatus(e.code), { error: e.toJSON() });
    }
    const abort = new AbortController();
    res.on("close", () => abort.abort(new Error("the client went away")));
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    const local = new Events();
    const off = local.on((event) => res.write(JSON.stringify({ event }) + "\n"));
    restores++;
    const knobs = describeRequest(body.config);
    events.log(`restore "${body.name}"${knobs ? ` with ${knobs} from the request` : ""}`);
    try {
      const { config: _sent, ...options } = body;
      const result = await restore({ ...options, config: settings.config, signal: abort.signal }, local, {
        cudaDriver: cuda.lease,
        ...(keepers ? { stager: keepers.stage } : {}),
      });
      res.end(JSON.stringify({ result }) + "\n");
      events.log(`restored "${body.name}" as instance ${result.instance.id} in ${result.readyMs.toFixed(0)} ms`);
    } catch (err) {
      const e = asStasisError(err);
      res.end(JSON.stringify({ error: e.toJSON() }) + "\n");
      events.log(`restore "${body.name}" failed: ${e.code}: ${e.message}`, "warn");
    } finally {
      off();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // The socket is bound inside listen(): under umask 077 it is root's alone from its first moment, not only
    // after the chmod (a --socket outside STASIS_HOME would otherwise be open to anyone for that moment).
    withUmask(0o077, () => server.listen(socket, () => resolve()));
  });
  await chmod(socket, 0o600);
  events.log(`stasis serve: listening on ${socket} (pid ${process.pid})`);
  await new Promise<void>((resolve) => {
    if (opts.signal?.aborted) return resolve();
    opts.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await unlink(socket).catch(() => undefined);
  await cuda.close();
  await keepers?.close();
  return { socket, restores };
}

/**
 * The socket path is ours if nothing is there, or a socket no daemon answers on (one that died), which is removed.
 * Anything else at that path (a file, a folder, a symlink) is refused, never removed: `--socket` names where to
 * listen, not what may be deleted.
 */
async function claimSocket(socket: string): Promise<void> {
  const st = await lstat(socket).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new StasisError("E_USAGE", `cannot listen on ${socket}: ${err.message}`, {
      hint: "give --socket a path in a folder that exists",
    });
  });
  if (!st) return;
  if (!st.isSocket()) {
    const kind = st.isSymbolicLink() ? "a symlink" : st.isDirectory() ? "a folder" : st.isFile() ? "a file" : "not one";
    const message = `cannot listen on ${socket}: it is ${kind}, and stasis serve only replaces a stale socket`;
    throw new StasisError("E_USAGE", message, {
      hint: "give --socket a path where nothing is yet (default $STASIS_HOME/stasisd.sock)",
      details: { socket },
    });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const req = httpRequest({ socketPath: socket, agent: false, path: "/v1/health", timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
  if (alive) {
    throw new StasisError("E_DAEMON", `a stasis daemon already serves ${socket}`, {
      hint: "stop it first (it exits on SIGINT or SIGTERM), or give --socket another path",
    });
  }
  await unlink(socket).catch(() => undefined);
}

/** The request's JSON body, checked against `schema`; E_USAGE (with `usage` as its hint) when it is not that. */
function parseBody<T>(text: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>, usage: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StasisError("E_USAGE", "the request body is not JSON", { hint: usage });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StasisError("E_USAGE", `bad request: ${issue.path.join(".") || "body"}: ${issue.message}`, {
      hint: usage,
    });
  }
  return parsed.data;
}

/** The most a request body may hold: a RestoreRequest is a few hundred bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The request's body, up to `MAX_BODY_BYTES`: a larger one (declared, or as it arrives) is E_TOO_LARGE (413) at
 * once, and never held in memory; Node's server discards the rest of it once the answer is sent.
 */
function readBody(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<string> {
  const tooLarge = (bytes: string) =>
    new StasisError("E_TOO_LARGE", `the request body is ${bytes}; the daemon takes at most ${max} bytes`, {
      hint: "send a JSON RestoreRequest (src/serve/protocol.ts), a few hundred bytes",
      details: { maxBytes: max },
    });
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) return reject(tooLarge(`${declared} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (d: Buffer) => {
      size += d.length;
      if (size <= max) return void chunks.push(d);
      req.off("data", onData);
      chunks.length = 0;
      reject(tooLarge(`over ${max} bytes`));
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body) + "\n");
}
