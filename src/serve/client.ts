/**
 * The CLI's side of `stasis serve`: send a restore, a capture, a listing or a stop to the daemon, and for the
 * streamed ones replay its events here, so progress, timelines and `--json` look the same as when the work runs in
 * this process. Each function answers undefined when no daemon answers (no socket, a stale one, or a daemon too old
 * for the route), and the caller does the work itself.
 */
import { request, type IncomingMessage } from "node:http";
import { StasisError, stasisErrorFromJSON } from "../errors.js";
import type { Events, StasisEvent } from "../events.js";
import { paths } from "../home.js";
import type { TakeResult } from "../restore/take.js";
import type { RestoreResult } from "../restore/restore.js";
import type { CaptureResult } from "../capture/capture.js";
import type { InstanceStatus } from "../instances/instances.js";
import type { TreeMemory } from "../proc/memory.js";
import type { CaptureRequest, DaemonLine, RestoreRequest, SwapAnswer, SwapRequest } from "./protocol.js";
import type { Pinned } from "../engines/weights-stager.js";
import { knobValue } from "../config/config.js";

export interface DaemonAt {
  socket?: string;
  signal?: AbortSignal;
}

/** Restores through the daemon; undefined when none answers. A daemon that answers and fails throws its error. */
export function restoreViaDaemon(
  req: RestoreRequest,
  events: Events,
  opts: DaemonAt = {},
): Promise<(RestoreResult & Partial<Pick<TakeResult, "taken">>) | undefined> {
  return streamed<RestoreResult & Partial<Pick<TakeResult, "taken">>>("/v1/restore", req, events, opts);
}

/** A swap through the daemon (there is no other way: hibernated instances live there); undefined when none answers. */
export function swapViaDaemon(req: SwapRequest, events: Events, opts: DaemonAt = {}): Promise<SwapAnswer | undefined> {
  return streamed<SwapAnswer>("/v1/swap", req, events, opts);
}

/** Captures through the daemon; undefined when none answers (or it is too old to capture). */
export function captureViaDaemon(
  req: CaptureRequest,
  events: Events,
  opts: DaemonAt = {},
): Promise<CaptureResult | undefined> {
  return streamed<CaptureResult>("/v1/captures", req, events, opts);
}

/** The daemon's instances (`stasis ps`); undefined when no daemon answers. */
export async function listViaDaemon(
  all: boolean,
  opts: DaemonAt = {},
): Promise<(InstanceStatus & { memory?: TreeMemory })[] | undefined> {
  const answer = await call("GET", `/v1/instances?all=${all}`, undefined, opts);
  return answer && (expect(answer, "instances", opts) as (InstanceStatus & { memory?: TreeMemory })[]);
}

/** Stops instances through the daemon (`stasis stop`), one request each; undefined when no daemon answers. */
export async function stopViaDaemon(
  o: { ids: string[]; all: boolean; graceMs: number },
  opts: DaemonAt = {},
): Promise<{ id: string; result: string }[] | undefined> {
  const ids = o.all ? (await listViaDaemon(true, opts))?.map((i) => i.id) : o.ids;
  if (!ids) return undefined;
  const out: { id: string; result: string }[] = [];
  for (const id of ids) {
    const answer = await call(
      "DELETE",
      `/v1/instances/${encodeURIComponent(id)}?graceMs=${Math.round(o.graceMs)}`,
      undefined,
      opts,
    );
    if (!answer && out.length === 0) return undefined;
    if (!answer)
      throw new StasisError("E_DAEMON", `the stasis daemon at ${socketOf(opts)} went away`, { hint: "run it again" });
    expect(answer, "result", opts);
    out.push(answer.body as { id: string; result: string });
  }
  return out;
}

/**
 * Asks the daemon to free its weights keepers' pinned weights (the keepers stay up, holding none). Returns how
 * many keepers held some, or undefined when no daemon answers.
 */
export async function releaseDaemonWeights(opts: DaemonAt = {}): Promise<number | undefined> {
  const answer = await call("POST", "/v1/weights/release", undefined, opts);
  return answer && (expect(answer, "released", opts) as number);
}

/** A daemon's answer to a pin: the weights pinned, or why not. */
export type DaemonPin = { pinned: Pinned } | { notPinned: string };

/**
 * Asks the daemon to pin snapshot `name`'s weights now, so that its next restore finds them in memory
 * (`stasis serve --pin-weights`). Undefined when no daemon answers; `notPinned` says why a daemon did not pin them
 * (it runs without --pin-weights, the snapshot has no weights to pin, the keeper failed): never fatal, the restore
 * then reads the weights file.
 */
export async function pinDaemonWeights(name: string, opts: DaemonAt = {}): Promise<DaemonPin | undefined> {
  const answer = await call("POST", "/v1/weights/pin", { name }, opts);
  if (!answer) return undefined;
  const body = answer.body as { pinned?: Pinned; error?: Record<string, unknown> };
  if (answer.status === 200 && body.pinned) return { pinned: body.pinned };
  if (body.error) return { notPinned: stasisErrorFromJSON(body.error).message };
  return {
    notPinned: `the stasis daemon at ${socketOf(opts)} answered ${answer.status}: ${answer.text.trim()} (an older stasis? restart \`stasis serve\`)`,
  };
}

interface Answer {
  status: number;
  text: string;
  body: unknown;
}

const socketOf = (opts: DaemonAt) => opts.socket ?? paths.daemonSocket();

/** `answer.body[field]` of a 200, else the daemon's error (or E_DAEMON for an answer that is neither). */
function expect(answer: Answer, field: string, opts: DaemonAt): unknown {
  const body = answer.body as Record<string, unknown>;
  if (answer.status === 200 && field in body) return body[field];
  if (body.error && typeof body.error === "object") throw stasisErrorFromJSON(body.error as Record<string, unknown>);
  throw new StasisError(
    "E_DAEMON",
    `the stasis daemon at ${socketOf(opts)} answered ${answer.status}: ${answer.text.trim().slice(0, 200)}`,
    {
      hint: "a daemon of an older stasis? restart `stasis serve`",
    },
  );
}

/**
 * No daemon to use: nobody listens (ENOENT, ECONNREFUSED), or the socket is root's and this user is not (EACCES:
 * the command then runs here and says plainly what it needs).
 */
function noDaemon(err: NodeJS.ErrnoException): boolean {
  return err.code === "ENOENT" || err.code === "ECONNREFUSED" || err.code === "EACCES";
}

/** A daemon that does not know the route (an older stasis) answers 404 E_USAGE "no METHOD PATH here". */
function unknownRoute(status: number, body: unknown): boolean {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return (
    status === 404 && e?.code === "E_USAGE" && typeof e.message === "string" && /^no [A-Z]+ \S+ here$/.test(e.message)
  );
}

/** Sends one request to the daemon; its answer (JSON parsed, {} where it is not), or undefined when none answers. */
function call(method: string, path: string, body: unknown, opts: DaemonAt): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const http = send(method, path, body, opts, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: the caller says what it expected
        }
        const status = res.statusCode ?? 0;
        resolve(unknownRoute(status, json) ? undefined : { status, text, body: json ?? {} });
      });
      res.on("error", reject);
    });
    http.on("error", (err: NodeJS.ErrnoException) => {
      if (noDaemon(err)) return resolve(undefined);
      reject(new StasisError("E_DAEMON", `the stasis daemon at ${socketOf(opts)}: ${err.message}`));
    });
  });
}

function send(method: string, path: string, body: unknown, opts: DaemonAt, onAnswer: (res: IncomingMessage) => void) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  const http = request({ socketPath: socketOf(opts), agent: false, method, path, headers }, onAnswer);
  opts.signal?.addEventListener("abort", () => http.destroy(new Error("interrupted")), { once: true });
  http.end(body === undefined ? undefined : JSON.stringify(body));
  return http;
}

/**
 * Sends a capture or restore and replays its streamed events into `events`; resolves with its result line, rejects
 * with its error line. Undefined when no daemon answers (or it does not know the route).
 */
function streamed<T>(path: string, body: unknown, events: Events, opts: DaemonAt): Promise<T | undefined> {
  const socket = socketOf(opts);
  return new Promise((resolve, reject) => {
    let answered = false;
    let settled = false;
    const done = (f: () => void) => {
      if (!settled) {
        settled = true;
        f();
      }
    };
    const http = send("POST", path, body, opts, (res) => {
      answered = true;
      res.setEncoding("utf8");
      let buf = "";
      let last: DaemonLine | undefined;
      const line = (text: string) => {
        if (!text.trim()) return;
        const j = JSON.parse(text) as DaemonLine;
        if ("event" in j) events.emit(j.event as StasisEvent);
        else last = j;
      };
      res.on("data", (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      // The answer is the last line, once the stream is over (it may close with a socket error after it).
      const finish = (err?: Error) => {
        try {
          line(buf);
          buf = "";
        } catch (e) {
          return done(() => reject(e));
        }
        const end = last;
        if (unknownRoute(res.statusCode ?? 0, end)) return done(() => resolve(undefined));
        if (end && "result" in end) return done(() => resolve(end.result as T));
        if (end && "error" in end) return done(() => reject(stasisErrorFromJSON(end.error)));
        const why = err
          ? `lost the stasis daemon at ${socket}: ${err.message}`
          : `the stasis daemon at ${socket} ended the request without an answer`;
        done(() => reject(new StasisError("E_DAEMON", why, { hint: "see the daemon's output" })));
      };
      res.on("end", () => finish());
      res.on("close", () => finish(new Error("connection closed")));
      res.on("error", (err) => finish(err));
    });
    http.on("error", (err: NodeJS.ErrnoException) => {
      // Once it answered, the response's end decides.
      if (answered) return;
      if (noDaemon(err)) return done(() => resolve(undefined));
      done(() => reject(new StasisError("E_DAEMON", `the stasis daemon at ${socket}: ${err.message}`)));
    });
  });
}

/**
 * The CLI's rule for every command the daemon can do: through a running `stasis serve` (its code loaded, the same
 * functions), else in this process; STASIS_NO_DAEMON=1: always here. `via` says which (the `--json` documents
 * carry it).
 */
export async function daemonOr<T>(
  viaDaemon: () => Promise<T | undefined>,
  here: () => Promise<T>,
): Promise<{ value: T; via: "daemon" | "process" }> {
  const answered = knobValue("noDaemon") ? undefined : await viaDaemon();
  return answered === undefined ? { value: await here(), via: "process" } : { value: answered, via: "daemon" };
}

/**
 * Calls the daemon's `path` with `body` (POST) and returns its answer's JSON; the daemon's error as the CLI's own.
 * E_DAEMON when no daemon answers: parked instances live in `stasis serve` alone.
 */
export async function callDaemon<T>(path: string, body: unknown, what: string, opts: DaemonAt = {}): Promise<T> {
  const answer = await call("POST", path, body, opts);
  if (!answer) {
    throw noDaemonFor(what, opts);
  }
  const json = answer.body as { error?: Record<string, unknown> };
  if (json.error) throw stasisErrorFromJSON(json.error);
  if (answer.status !== 200) {
    throw new StasisError(
      "E_DAEMON",
      `the stasis daemon at ${socketOf(opts)} answered ${answer.status}: ${answer.text.trim().slice(0, 200)}`,
      { hint: "a daemon of an older stasis? restart `stasis serve`" },
    );
  }
  return json as T;
}

/** E_DAEMON for `what`, which only a running daemon does (parked and hibernated instances live there). */
export function noDaemonFor(what: string, opts: DaemonAt = {}): StasisError {
  return new StasisError("E_DAEMON", `${what} needs a running stasis daemon, and none answers at ${socketOf(opts)}`, {
    hint: "start one with `stasis serve` (parked instances live in the daemon)",
  });
}

/**
 * Asks the daemon to end parked instance `id`: true where it held it, false where it holds none of that id, and
 * undefined where no daemon answers.
 */
export async function stopParkedViaDaemon(id: string, opts: DaemonAt = {}): Promise<boolean | undefined> {
  const answer = await call("POST", "/v1/parked/stop", { id }, opts);
  if (!answer) return undefined;
  return (answer.body as { stopped?: unknown }).stopped === true;
}
