import type { BenchReport } from "./bench.js";
import type { Drawing, Item } from "./drawing.js";
import { diskWindows } from "./report.js";
import { formatMs } from "../cli/render/format.js";

/** Height in px of a strategy's disk strip (its fastest window). */
const DISK_STRIP = 36;

const COLORS: [RegExp, string][] = [
  [/criu/, "#4e79a7"],
  [/cuda/, "#76b7b2"],
  [/prefetch|verify|digest/, "#b07aa1"],
  [/weights|wake|refill|sleep/, "#f28e2b"],
  [/ready|canary|first-token|reset/, "#59a14f"],
  [/launch|cli-overhead|open/, "#9c755f"],
];
const colorOf = (name: string) => COLORS.find(([re]) => re.test(name))?.[1] ?? "#bab0ac";

/**
 * The benchmark as a picture: a summary bar per strategy (median time to first token), then each strategy's
 * phases as a waterfall on its own time axis (phases that overlap are drawn overlapping), and under restore-cold's
 * the disks' read rate over the same time (200 ms windows of the median run's samples).
 */
export function waterfall(r: BenchReport): Drawing {
  const W = 1000;
  const left = 220;
  const plot = W - left - 120; // room on the right for the labels
  const items: Item[] = [];
  let y = 16;
  const text = (x: number, t: string, size: 12 | 16 = 12, color = "#222222") => items.push({ kind: "text", x, y, text: t, size, color });
  text(16, `stasis bench: ${r.snapshot}`, 16);
  y += 22;
  text(16, `${r.date.slice(0, 16).replace("T", " ")}  ${r.machine.gpu ?? r.machine.cpuModel}  (median of ${r.repeat})`, 12, "#555555");
  y += 26;
  const maxTtft = Math.max(...r.strategies.map((s) => s.medianFirstTokenMs));
  for (const s of r.strategies) {
    text(16, s.strategy);
    const w = Math.max(2, (s.medianFirstTokenMs / maxTtft) * plot);
    items.push({ kind: "rect", x: left, y: y - 1, w, h: 14, color: s.strategy.startsWith("restore") ? "#4e79a7" : "#bab0ac" });
    text(left + w + 6, formatMs(s.medianFirstTokenMs));
    y += 20;
  }
  y += 14;
  for (const s of r.strategies) {
    const end = Math.max(1, ...s.phases.map((p) => p.endMs));
    text(16, `${s.strategy}: first token at ${formatMs(s.medianFirstTokenMs)} (${s.setup})`, 16);
    y += 22;
    for (const p of [...s.phases].sort((a, b) => a.startMs - b.startMs)) {
      text(28, p.name.length > 28 ? p.name.slice(0, 27) + "~" : p.name);
      const x = left + (p.startMs / end) * plot;
      const w = Math.max(1.5, (p.ms / end) * plot);
      items.push({ kind: "rect", x, y: y - 1, w, h: 12, color: colorOf(p.name) });
      const label = `${formatMs(p.ms)}${p.gbps ? ` ${p.gbps.toFixed(1)} GB/s` : ""}`;
      text(x + w + 6, label, 12, "#444444");
      y += 16;
    }
    // restore-cold: what the disks read, 200 ms at a time, on the same axis (the idle and the slow stretches).
    const windows = s.disk && s.disk.length > 1 ? diskWindows(s.disk, 200) : [];
    if (windows.length > 0) {
      const peak = Math.max(...windows.map((w) => w.gbps), 1e-9);
      y += 4;
      text(28, "disk read");
      for (let i = 0; i < windows.length; i++) {
        const w = windows[i]!;
        const to = windows[i + 1]?.fromMs ?? s.disk!.at(-1)!.ms;
        const x = left + (Math.min(w.fromMs, end) / end) * plot;
        const h = (w.gbps / peak) * DISK_STRIP;
        items.push({ kind: "rect", x, y: y + DISK_STRIP - h, w: Math.max(1, ((Math.min(to, end) - Math.min(w.fromMs, end)) / end) * plot - 1), h, color: "#e15759" });
      }
      items.push({ kind: "text", x: left + plot + 6, y: y + DISK_STRIP - 14, text: `peak ${peak.toFixed(2)} GB/s`, size: 12, color: "#444444" });
      y += DISK_STRIP + 4;
    }
    // Axis: five ticks over this strategy's own time span.
    items.push({ kind: "rect", x: left, y: y + 2, w: plot, h: 1, color: "#888888" });
    y += 8;
    for (let i = 0; i <= 4; i++) {
      const t = (end * i) / 4;
      items.push({ kind: "text", x: Math.min(left + (plot * i) / 4, W - 60), y, text: formatMs(t), size: 12, color: "#666666" });
    }
    y += 28;
  }
  return { width: W, height: y + 8, background: "#ffffff", items };
}
