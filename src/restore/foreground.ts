import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { Events } from "../events.js";
import { findInstance, stopInstance, type Instance } from "../instances/instances.js";
import { isRunning } from "../proc/tree.js";
import { sendDatagram } from "../native/libc-proc.js";

const REAPER = fileURLToPath(new URL("./reaper.js", import.meta.url));
const STATUS_FILE = "exit-status.json";

/** What CRIU execs in its place for a --foreground restore (reaper.ts), writing the status into `dir`. */
export function reaperCommand(dir: string): string[] {
  return [process.execPath, REAPER, join(dir, STATUS_FILE)];
}

/** How the server ended: its exit code, or the signal that ended it; `lost`: its namespace's init was killed. */
export interface ServerExit {
  code?: number;
  signal?: number;
  lost?: boolean;
}

/** The exit status a --foreground stasis ends with: the server's, 128 + N for signal N (as a shell says). */
export function exitStatusOf(e: ServerExit): number {
  if (e.signal !== undefined) return 128 + e.signal;
  return e.code ?? 1;
}

/**
 * Tells the service manager (systemd's $NOTIFY_SOCKET, a unix datagram socket) `message`: "READY=1" once the canary
 * matched, "STOPPING=1" as a stop begins. Nothing without NOTIFY_SOCKET. A failure is a warning: the server serves.
 */
export function notify(message: string, events: Events, env: NodeJS.ProcessEnv = process.env): boolean {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return false;
  try {
    sendDatagram(socket, message);
    return true;
  } catch (err) {
    const what = message.split("\n")[0];
    events.log(`could not tell the service manager "${what}" at ${socket}: ${(err as Error).message}`, "warn");
    return false;
  }
}

/**
 * After a `--foreground` restore: stays with the server until it ends. SIGTERM, SIGINT and SIGHUP are passed on to
 * the server (its root; it shuts its own children down), as a service manager or a container runtime stops its
 * main process. Once the server has ended, what the instance holds is let go (forwarder, namespace, record), and its
 * exit status returned.
 */
export async function stayInForeground(
  inst: Instance,
  events: Events,
  opts: { pollMs?: number } = {},
): Promise<ServerExit> {
  notify(`READY=1\nSTATUS=serving at ${inst.url}`, events);
  const pass = (signal: NodeJS.Signals) => {
    events.log(`passing ${signal} to the server (pid ${inst.pid})`);
    notify("STOPPING=1", events);
    try {
      process.kill(inst.pid, signal);
    } catch {
      /* already ended */
    }
  };
  const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
  for (const s of signals) process.on(s, pass);
  try {
    // The namespace's init (the reaper) ends right after the server, having written its status.
    const init = inst.nsInit ?? inst.pid;
    while (await isRunning(init)) await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
    const text = await readFile(join(inst.dir, STATUS_FILE), "utf8").catch(() => undefined);
    return text ? (JSON.parse(text) as ServerExit) : { lost: true };
  } finally {
    for (const s of signals) process.off(s, pass);
    // Invariant: a foreground restore leaves nothing once it returns (forwarder, files, record).
    const now = await findInstance(inst.id).catch(() => ({ ...inst, running: false, status: "exited" as const }));
    await stopInstance(now, 0);
  }
}
