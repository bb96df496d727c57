/**
 * Re-arms the periodic timerfds CRIU restored disarmed. CRIU sets a timerfd's it_value and it_interval as the dump
 * read them from fdinfo; a periodic timer that expired while the tree was frozen, unread, reads there as it_value 0,
 * and setting a zero it_value disarms a timer whatever its interval (the expiries still pending come back as ticks,
 * but nothing restarts the period): a server's heartbeat or scheduler tick would simply stop, and the canary would
 * not notice. After the restore such a timer shows it_value 0 with an interval; the restore sets it again, periodic,
 * first expiry one period from now, through a copy of the process's own descriptor (native/libc.ts rearmTimerfd).
 */
import type { Events } from "../events.js";
import { processTree } from "../proc/tree.js";
import { timerFds, type TimerFd } from "../proc/timerfd.js";

/**
 * Re-arms the disarmed periodic timerfds of the tree rooted at `root`; a timer it cannot re-arm is a warning. Pending
 * ticks restored by CRIU are read by the server first (it then finds the timer disarmed), so the check waits up to
 * `settleMs` for timers that show pending ticks and no expiry ahead.
 */
export async function rearmTimers(root: number, events: Events, settleMs = 200): Promise<TimerFd[]> {
  const pids = (await processTree(root)).map((p) => p.pid);
  // No expiry ahead: disarmed, unless expiries are pending and it is an expiry the server has not read yet (a read
  // restarts it). Either way, once read, a timer that stays at it_value 0 is disarmed.
  const stopped = async () => (await timerFds(pids)).filter((t) => t.intervalNs > 0 && t.valueNs === 0);
  const deadline = Date.now() + settleMs;
  let timers = await stopped();
  while (timers.some((t) => t.ticks > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    timers = await stopped();
  }
  const { rearmTimerfd } = await import("../native/libc.js");
  const rearmed: TimerFd[] = [];
  for (const t of timers) {
    try {
      // Pending ticks (a server that has not read them in `settleMs`) are kept: set again after the timer is.
      rearmTimerfd(t.pid, t.fd, t.intervalNs, t.ticks);
      rearmed.push(t);
    } catch (err) {
      const why = (err as Error).message;
      events.log(
        `a periodic timerfd (pid ${t.pid} fd ${t.fd}) came back disarmed and could not be re-armed: ${why}`,
        "warn",
      );
    }
  }
  if (rearmed.length > 0) {
    const which = rearmed.map((t) => `pid ${t.pid} fd ${t.fd}`).join(", ");
    events.log(`re-armed ${rearmed.length} periodic timerfd(s) that CRIU restored disarmed: ${which}`);
  }
  return rearmed;
}
