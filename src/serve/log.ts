/**
 * The daemon's log, one line per event or request, to standard error: text for people (the daemon's own lines and
 * the requests) or JSON for log collectors (`--log-format json`: also every event of each capture and restore,
 * tagged with its request's id, except progress ticks, which are for progress bars).
 */
import type { StasisEvent } from "../events.js";

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A request, once answered (a streamed one once its stream has ended). */
export interface RequestRecord {
  id: string;
  method: string;
  url: string;
  status: number;
  ms: number;
  /** Where it came: the unix socket, or TCP (then `remote` is the client's address). */
  via: "unix" | "tcp";
  remote?: string;
}

export interface DaemonLog {
  /** An event of the daemon itself, or of the operation that request `op.request` runs. */
  event(e: StasisEvent, op?: { request: string; operation: string }): void;
  request(r: RequestRecord): void;
}

export function daemonLog(format: LogFormat, write: (line: string) => void, now = () => new Date()): DaemonLog {
  if (format === "json") {
    const line = (o: Record<string, unknown>) => write(JSON.stringify({ time: now().toISOString(), ...o }) + "\n");
    return {
      event(e, op) {
        if (e.type === "progress") return;
        const level = e.type === "log" ? e.level : e.type === "phase-end" && !e.ok ? "warn" : "info";
        if (!op && e.type === "log") return line({ level, kind: "log", msg: e.message });
        line({ level, kind: "event", ...(op ?? {}), event: e });
      },
      request(r) {
        line({ level: r.status >= 500 ? "warn" : "info", kind: "request", ...r });
      },
    };
  }
  const line = (text: string) => write(`${now().toISOString()} ${text}\n`);
  return {
    event(e, op) {
      if (!op && e.type === "log") line(`${e.level === "warn" ? "warning: " : ""}${e.message}`);
    },
    request(r) {
      line(
        `${r.method} ${r.url} ${r.status} ${r.ms.toFixed(0)} ms (${r.via}${r.remote ? ` ${r.remote}` : ""}, ${r.id})`,
      );
    },
  };
}
