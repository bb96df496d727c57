import { readFile } from "node:fs/promises";
import { openFds } from "./tree.js";

/** A timerfd as /proc/PID/fdinfo/FD shows it. */
export interface TimerFd {
  pid: number;
  fd: number;
  clockid: number;
  /** Time to the next expiry, ns; 0 once it expired (and, for a periodic timer, until it is read). */
  valueNs: number;
  /** The period, ns (0: a one-shot timer). */
  intervalNs: number;
  /** Expiries not read yet. */
  ticks: number;
}

/** Parses /proc/PID/fdinfo/FD of a timerfd ("it_value: (0, 49999)" is seconds, nanoseconds). */
export function parseTimerFdinfo(text: string): Omit<TimerFd, "pid" | "fd"> | undefined {
  const pair = (key: string) => {
    const m = new RegExp(`^${key}:\\s*\\((\\d+),\\s*(\\d+)\\)`, "m").exec(text);
    return m ? Number(m[1]) * 1e9 + Number(m[2]) : undefined;
  };
  const valueNs = pair("it_value");
  const intervalNs = pair("it_interval");
  if (valueNs === undefined || intervalNs === undefined) return undefined;
  const field = (key: string) => Number(new RegExp(`^${key}:\\s*(\\d+)`, "m").exec(text)?.[1] ?? -1);
  return { clockid: field("clockid"), valueNs, intervalNs, ticks: Math.max(0, field("ticks")) };
}

/** Every timerfd open in the processes `pids`. */
export async function timerFds(pids: number[]): Promise<TimerFd[]> {
  const out: TimerFd[] = [];
  for (const pid of pids) {
    for (const { fd, target } of await openFds(pid)) {
      if (target !== "anon_inode:[timerfd]") continue;
      const info = parseTimerFdinfo(await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => ""));
      if (info) out.push({ pid, fd, ...info });
    }
  }
  return out;
}
