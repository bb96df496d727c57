/**
 * Periodic timerfds in the tree at capture. CRIU dumps a timerfd's it_value and it_interval as the kernel shows
 * them (fdinfo) and sets them again at restore. A periodic timer that expired while the tree was frozen, and was
 * not read since, shows an it_value of 0 (the kernel moves it to the next period only when it is read), and
 * setting a zero it_value disarms a timer whatever its interval: it comes back disarmed, and nothing in the canary
 * notices: a server's heartbeat or scheduler tick simply stops. stasis cannot re-arm it from outside (the timer
 * belongs to the process), so the capture warns and the manifest records which timers there were.
 */
import { readFile } from "node:fs/promises";
import { openFds } from "../proc/tree.js";

export interface ArmedTimer {
  pid: number;
  fd: number;
  clockid: number;
  /** Time to the next expiry, ns. */
  valueNs: number;
  /** The period, ns (0: a one-shot timer). */
  intervalNs: number;
}

/** Parses /proc/PID/fdinfo/FD of a timerfd ("it_value: (0, 49999)" is seconds, nanoseconds). */
export function parseTimerFdinfo(text: string): Omit<ArmedTimer, "pid" | "fd"> | undefined {
  const pair = (key: string) => {
    const m = new RegExp(`^${key}:\\s*\\((\\d+),\\s*(\\d+)\\)`, "m").exec(text);
    return m ? Number(m[1]) * 1e9 + Number(m[2]) : undefined;
  };
  const valueNs = pair("it_value");
  const intervalNs = pair("it_interval");
  if (valueNs === undefined || intervalNs === undefined) return undefined;
  return { clockid: Number(/^clockid:\s*(\d+)/m.exec(text)?.[1] ?? -1), valueNs, intervalNs };
}

/** The periodic timerfds (armed, with an interval) open in the processes `pids`. */
export async function periodicTimers(pids: number[]): Promise<ArmedTimer[]> {
  const out: ArmedTimer[] = [];
  for (const pid of pids) {
    for (const { fd, target } of await openFds(pid)) {
      if (target !== "anon_inode:[timerfd]") continue;
      const info = parseTimerFdinfo(await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => ""));
      if (info && info.intervalNs > 0) out.push({ pid, fd, ...info });
    }
  }
  return out;
}

/** One line for the capture's warning. */
export function describeTimers(timers: ArmedTimer[]): string {
  const list = timers.map((t) => `pid ${t.pid} fd ${t.fd} every ${formatNs(t.intervalNs)}`).join(", ");
  return (
    `${timers.length} periodic timerfd(s) in the server (${list}): CRIU may restore one whose expiry falls while the ` +
    "tree is frozen as disarmed, and it then never fires again (the canary does not notice); a server that relies " +
    "on it should re-arm its timers itself after a restore"
  );
}

function formatNs(ns: number): string {
  return ns >= 1e9 ? `${+(ns / 1e9).toFixed(3)} s` : ns >= 1e6 ? `${+(ns / 1e6).toFixed(3)} ms` : `${ns} ns`;
}
