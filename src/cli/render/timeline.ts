import type { TimelinePhase } from "../../events.js";
import { formatBytes, formatMs, table } from "../../text.js";

/** The phases of a pipeline as a table with a bar per phase showing when it ran (phases may overlap). */
export function renderTimeline(phases: TimelinePhase[], totalMs?: number): string {
  if (phases.length === 0) return "";
  const origin = Math.min(...phases.map((p) => p.startMs));
  const end = totalMs ?? Math.max(...phases.map((p) => p.endMs)) - origin;
  const width = 30;
  const rows = [["phase", "start", "took", "bytes", "rate", "when"]];
  for (const p of [...phases].sort((a, b) => a.startMs - b.startMs)) {
    // A phase after `totalMs` (the working set recorded after ready) sits at the right edge.
    const a = Math.min(width - 1, Math.floor(((p.startMs - origin) / Math.max(end, 1)) * width));
    const b = Math.max(a + 1, Math.round(((p.endMs - origin) / Math.max(end, 1)) * width));
    const bar = " ".repeat(a) + "▇".repeat(Math.min(width, b) - a);
    rows.push([
      p.ok ? p.name : `${p.name} (failed)`,
      formatMs(p.startMs - origin),
      formatMs(p.ms),
      p.bytes !== undefined ? formatBytes(p.bytes) : "",
      p.gbps !== undefined ? `${p.gbps.toFixed(2)} GB/s` : "",
      bar.padEnd(width),
    ]);
  }
  return table(rows);
}
