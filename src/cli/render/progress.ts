import type { Events, StasisEvent } from "../../events.js";
import { fitLine, formatBytes, formatMs } from "../../text.js";

interface RendererOptions {
  quiet: boolean;
  stream: NodeJS.WriteStream;
}

/**
 * Renders the event stream for a person: on a terminal, one live progress line per running phase (bytes,
 * GB/s, ETA) or wait (how long, the last answer, the server's log), cut to the terminal's width; elsewhere, one
 * line per finished phase. Warnings always show (unless quiet). Returns a detach.
 */
export function attachRenderer(events: Events, opts: RendererOptions): () => void {
  if (opts.quiet) return () => {};
  const tty = Boolean(opts.stream.isTTY);
  let live = "";
  let lastDraw = 0;
  const clear = () => {
    if (tty && live) opts.stream.write("\r\x1b[K");
    live = "";
  };
  const draw = (line: string) => {
    clear();
    // A line wider than the terminal wraps, and "\r" then returns to its second half: cut it instead.
    live = fitLine(line, opts.stream.columns);
    opts.stream.write(live);
  };
  const off = events.on((e: StasisEvent) => {
    switch (e.type) {
      case "progress": {
        if (!tty) return;
        const now = e.t;
        if (now - lastDraw < 100 && e.done < e.total) return;
        lastDraw = now;
        draw(progressLine(e));
        return;
      }
      case "waiting":
        if (tty) draw(waitingLine(e));
        return;
      case "phase-end":
        clear();
        opts.stream.write(
          `${e.ok ? "✓" : "✗"} ${e.phase.padEnd(20)} ${formatMs(e.ms).padStart(9)}${e.bytes ? `  ${formatBytes(e.bytes)}` : ""}\n`,
        );
        return;
      case "log":
        if (e.level === "warn") {
          clear();
          opts.stream.write(`warning: ${e.message}\n`);
        }
        return;
      default:
        return;
    }
  });
  return () => {
    off();
    clear();
  };
}

/** `ready: waiting 12 s for http://127.0.0.1:8000/health (last: HTTP 503); server log: /var/...` */
export function waitingLine(e: Extract<StasisEvent, { type: "waiting" }>): string {
  return `${e.phase}: waiting ${Math.round(e.elapsedMs / 1000)} s for ${e.url} (last: ${e.last})${e.logPath ? `; server log: ${e.logPath}` : ""}`;
}

const starts = new Map<string, { t: number; done: number }>();

export function progressLine(e: Extract<StasisEvent, { type: "progress" }>): string {
  // A phase that starts again (done back at 0, or lower than before) measures its rate afresh.
  const seen = starts.get(e.phase);
  const first = seen && e.done >= seen.done && e.done !== 0 ? seen : { t: e.t, done: e.done };
  starts.set(e.phase, first);
  const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
  const width = 24;
  const filled = Math.round(frac * width);
  const bar = "█".repeat(filled) + "░".repeat(width - filled);
  const secs = (e.t - first.t) / 1000;
  if (e.unit === "items") return `${e.phase} ${bar} ${e.done}/${e.total}`;
  const rate = secs > 0 ? (e.done - first.done) / secs : 0;
  const eta = rate > 0 ? `${((e.total - e.done) / rate).toFixed(1)} s` : "-";
  return `${e.phase} ${bar} ${formatBytes(e.done)}/${formatBytes(e.total)}  ${(rate / 1e9).toFixed(2)} GB/s  ETA ${eta}`;
}
