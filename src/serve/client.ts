/**
 * The CLI's side of `stasis serve`: send a restore to the daemon and replay its events here, so progress,
 * timelines and `--json` look the same as a restore run in this process.
 */
import { request } from "node:http";
import { StasisError, stasisErrorFromJSON } from "../errors.js";
import type { Events, StasisEvent } from "../events.js";
import { paths } from "../home.js";
import type { RestoreResult } from "../restore/restore.js";
import type { TakeResult } from "../restore/take.js";
import type { DaemonLine, RestoreRequest } from "./protocol.js";
import type { Pinned } from "../engines/weights-stager.js";

/**
 * Restores through the daemon at `socket`. Returns undefined when no daemon answers there (no socket, or a
 * stale one), so the caller restores in-process; a daemon that answers and fails throws its error.
 */
export async function restoreViaDaemon(
  req: RestoreRequest,
  events: Events,
  opts: { socket?: string; signal?: AbortSignal } = {},
): Promise<(RestoreResult & Partial<Pick<TakeResult, "taken">>) | undefined> {
  const socket = opts.socket ?? paths.daemonSocket();
  return new Promise((resolve, reject) => {
    let answered = false;
    let settled = false;
    const done = (f: () => void) => {
      if (!settled) {
        settled = true;
        f();
      }
    };
    const http = request({ socketPath: socket, agent: false, method: "POST", path: "/v1/restore", headers: { "content-type": "application/json" } }, (res) => {
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
        if (end && "result" in end) return done(() => resolve(end.result as RestoreResult));
        if (end && "error" in end) return done(() => reject(stasisErrorFromJSON(end.error)));
        const why = err ? `lost the stasis daemon at ${socket}: ${err.message}` : `the stasis daemon at ${socket} ended the restore without an answer`;
        done(() => reject(new StasisError("E_DAEMON", why, { hint: "see the daemon's output" })));
      };
      res.on("end", () => finish());
      res.on("close", () => finish(new Error("connection closed")));
      res.on("error", (err) => finish(err));
    });
    http.on("error", (err: NodeJS.ErrnoException) => {
      // No daemon: nobody listens (ENOENT, ECONNREFUSED). Once it answered, the response's end decides.
      if (answered) return;
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED") return done(() => resolve(undefined));
      done(() => reject(new StasisError("E_DAEMON", `the stasis daemon at ${socket}: ${err.message}`)));
    });
    opts.signal?.addEventListener("abort", () => http.destroy(new Error("interrupted")), { once: true });
    http.end(JSON.stringify(req));
  });
}

/**
 * Asks the daemon at `socket` to free its weights keepers' pinned weights (the keepers stay up, holding none).
 * Returns how many keepers held some, or undefined when no daemon answers.
 */
export async function releaseDaemonWeights(opts: { socket?: string } = {}): Promise<number | undefined> {
  const socket = opts.socket ?? paths.daemonSocket();
  const answer = await postJson(socket, "/v1/weights/release");
  if (!answer) return undefined;
  const released = (answer.body as { released?: unknown }).released;
  if (answer.status !== 200 || typeof released !== "number") {
    throw new StasisError("E_DAEMON", `the stasis daemon at ${socket} did not release its weights: answered ${answer.status}: ${answer.text.trim()}`, {
      hint: "a daemon of an older stasis? restart `stasis serve`",
    });
  }
  return released;
}

/** A daemon's answer to a pin: the weights pinned, or why not. */
export type DaemonPin = { pinned: Pinned } | { notPinned: string };

/**
 * Asks the daemon at `socket` to pin snapshot `name`'s weights now, so that its next restore finds them in memory
 * (`stasis serve --pin-weights`). Undefined when no daemon answers; `notPinned` says why a daemon did not pin them
 * (it runs without --pin-weights, the snapshot has no weights to pin, the keeper failed): never fatal, the restore
 * then reads the weights file.
 */
export async function pinDaemonWeights(name: string, opts: { socket?: string } = {}): Promise<DaemonPin | undefined> {
  const socket = opts.socket ?? paths.daemonSocket();
  const answer = await postJson(socket, "/v1/weights/pin", { name });
  if (!answer) return undefined;
  const body = answer.body as { pinned?: Pinned; error?: Record<string, unknown> };
  if (answer.status === 200 && body.pinned) return { pinned: body.pinned };
  if (body.error) return { notPinned: stasisErrorFromJSON(body.error).message };
  return { notPinned: `the stasis daemon at ${socket} answered ${answer.status}: ${answer.text.trim()} (an older stasis? restart \`stasis serve\`)` };
}

/**
 * Calls the daemon's `path` with `body` and returns its answer's JSON; the daemon's error as the CLI's own. E_DAEMON
 * when no daemon answers: parked instances live in `stasis serve` alone.
 */
export async function callDaemon<T>(
  path: string,
  body: unknown,
  what: string,
  opts: { socket?: string } = {},
): Promise<T> {
  const socket = opts.socket ?? paths.daemonSocket();
  const answer = await postJson(socket, path, body);
  if (!answer) {
    throw new StasisError("E_DAEMON", `${what} needs a running stasis daemon, and none answers at ${socket}`, {
      hint: "start one with `stasis serve` (parked instances live in the daemon)",
    });
  }
  const json = answer.body as { error?: Record<string, unknown> };
  if (json.error) throw stasisErrorFromJSON(json.error);
  if (answer.status !== 200) {
    throw new StasisError("E_DAEMON", `the stasis daemon at ${socket} answered ${answer.status}: ${answer.text.trim()}`, {
      hint: "a daemon of an older stasis? restart `stasis serve`",
    });
  }
  return json as T;
}

/**
 * Asks the daemon to end parked instance `id`: true where it held it, false where it holds none of that id, and
 * undefined where no daemon answers.
 */
export async function stopParkedViaDaemon(id: string, opts: { socket?: string } = {}): Promise<boolean | undefined> {
  const socket = opts.socket ?? paths.daemonSocket();
  const answer = await postJson(socket, "/v1/parked/stop", { id });
  if (!answer) return undefined;
  return (answer.body as { stopped?: unknown }).stopped === true;
}

/** POSTs `body` (JSON) to the daemon; its status, text and parsed JSON ({} where it is not), or undefined when no
 *  daemon answers (no socket, or a stale one). */
function postJson(socket: string, path: string, body?: unknown): Promise<{ status: number; text: string; body: unknown } | undefined> {
  return new Promise((resolve, reject) => {
    const http = request({ socketPath: socket, agent: false, method: "POST", path, headers: { "content-type": "application/json" } }, (res) => {
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
        resolve({ status: res.statusCode ?? 0, text, body: json ?? {} });
      });
      res.on("error", reject);
    });
    http.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED") return resolve(undefined);
      reject(new StasisError("E_DAEMON", `the stasis daemon at ${socket}: ${err.message}`));
    });
    http.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
