/**
 * Periodic timerfds in the tree at capture, recorded in the manifest. CRIU can restore one disarmed (a periodic
 * timer that expired while the tree was frozen, unread, is dumped with it_value 0); a restore of a snapshot that had
 * any looks for them and arms them again (restore/timers.ts).
 */
import { timerFds, type TimerFd } from "../proc/timerfd.js";

export type ArmedTimer = Omit<TimerFd, "ticks">;

/** The periodic timerfds (with an interval) open in the processes `pids`. */
export async function periodicTimers(pids: number[]): Promise<ArmedTimer[]> {
  return (await timerFds(pids)).filter((t) => t.intervalNs > 0).map(({ ticks: _ticks, ...t }) => t);
}

/** One line for the capture's log. */
export function describeTimers(timers: ArmedTimer[]): string {
  const list = timers.map((t) => `pid ${t.pid} fd ${t.fd} every ${formatNs(t.intervalNs)}`).join(", ");
  return (
    `${timers.length} periodic timerfd(s) in the server (${list}): CRIU restores one whose expiry falls while the ` +
    "tree is frozen disarmed; each restore re-arms those"
  );
}

function formatNs(ns: number): string {
  return ns >= 1e9 ? `${+(ns / 1e9).toFixed(3)} s` : ns >= 1e6 ? `${+(ns / 1e6).toFixed(3)} ms` : `${ns} ns`;
}
