import type { BenchReport, StrategySummary } from "./bench.js";
import { fitText, textWidth, wrapText, type Drawing, type Item } from "./drawing.js";
import { diskWindows, subjectLine } from "./report.js";
import { niceTicks, rateLabel, speedupLabel, tickLabel } from "./ticks.js";
import { formatMs } from "../text.js";

const W = 1100;
const MARGIN = 20;
/** The plots run from LEFT to RIGHT: the phase names stand left of them, the bars' labels may reach right. */
const LEFT = 230;
const RIGHT = W - 190;
const PLOT = RIGHT - LEFT;
/** Height in px of a strategy's disk strip (its fastest window). */
const DISK_STRIP = 36;
const INK = "#222222";
const MUTED = "#555555";
const FAINT = "#999999";
const GRID = "#e6e6e6";

/** Phase colours by what the phase does, with the legend's words for each; the first match wins. */
const GROUPS: { label: string; color: string; re: RegExp }[] = [
  { label: "CRIU", color: "#4e79a7", re: /criu/ },
  { label: "CUDA", color: "#76b7b2", re: /cuda/ },
  { label: "prefetch, verify", color: "#b07aa1", re: /prefetch|verify|digest/ },
  { label: "weights, wake", color: "#f28e2b", re: /weights|wake|refill|sleep/ },
  { label: "ready, canary, first token", color: "#59a14f", re: /ready|canary|first-token|reset/ },
  { label: "launch, CLI, open", color: "#9c755f", re: /launch|cli-overhead|open/ },
];
const OTHER = { label: "other", color: "#bab0ac" };
export const DISK_COLOR = "#e15759";
const groupOf = (name: string) => GROUPS.find((g) => g.re.test(name)) ?? OTHER;

/**
 * The benchmark as a picture: a summary bar per strategy (median time to first token, and how many times faster
 * than a cold start), a legend of the phase colours, then each strategy's phases as a waterfall on its own time
 * axis (phases that overlap are drawn overlapping; ticks at round values), and under restore-cold's the disks'
 * read rate over the same time (200 ms windows of the median run's samples).
 */
export function waterfall(r: BenchReport): Drawing {
  const items: Item[] = [];
  const text = (x: number, y: number, t: string, o: Partial<Extract<Item, { kind: "text" }>> = {}) =>
    items.push({ kind: "text", x, y, text: t, size: 12, color: INK, ...o });
  const rect = (x: number, y: number, w: number, h: number, color: string) =>
    items.push({ kind: "rect", x, y, w, h, color });
  const line = (x1: number, y1: number, x2: number, y2: number, color: string) =>
    items.push({ kind: "line", x1, y1, x2, y2, color });
  /** A bar's label right of its end, or inside it, at its end, where it would leave the picture (then in white
   *  on a dark bar, in ink on a light one). */
  const barLabel = (x: number, w: number, y: number, t: string, bar: string, color = MUTED) => {
    if (x + w + 6 + textWidth(t, 12) <= W - MARGIN) text(x + w + 6, y, t, { color });
    else text(x + w - 6, y, t, { color: luminance(bar) > 0.55 ? INK : "#ffffff", anchor: "end" });
  };
  const wide = W - 2 * MARGIN;

  let y = 34;
  text(MARGIN, y, fitText(`stasis bench: ${r.snapshot}`, 20, wide), { size: 20, bold: true });
  const starts = r.strategies.map((s) => s.strategy).filter((s) => !s.startsWith("restore"));
  const startRuns = starts.length > 0 && r.repeatStarts !== undefined && r.repeatStarts !== r.repeat;
  const runs =
    `median of ${r.repeat} run${r.repeat === 1 ? "" : "s"}` +
    (startRuns ? ` (${r.repeatStarts} of ${starts.join(" and ")})` : "");
  const facts = [r.date.slice(0, 16).replace("T", " "), r.machine.gpu ?? r.machine.cpuModel, runs].join(" · ");
  // What ran (engine and model), where the results recorded it.
  for (const l of [facts, ...(r.engine ? [subjectLine(r)] : [])].flatMap((f) => wrapText(f, 12, wide))) {
    y += 18;
    text(MARGIN, y, l, { color: MUTED });
  }

  // Summary: time to first token, each strategy against a cold start.
  y += 34;
  text(MARGIN, y, "Time to first token (median)", { size: 15, bold: true });
  y += 12;
  const cold = r.strategies.find((s) => s.strategy === "cold");
  const maxTtft = Math.max(...r.strategies.map((s) => s.medianFirstTokenMs));
  for (const s of r.strategies) {
    const w = Math.max(2, (s.medianFirstTokenMs / maxTtft) * PLOT);
    text(MARGIN, y + 11, s.strategy);
    const bar = s.strategy.startsWith("restore") ? "#4e79a7" : OTHER.color;
    rect(LEFT, y, w, 14, bar);
    const faster =
      cold && s !== cold ? ` · ${speedupLabel(cold.medianFirstTokenMs, s.medianFirstTokenMs)} faster than cold` : "";
    barLabel(LEFT, w, y + 11, `${formatMs(s.medianFirstTokenMs)}${faster}`, bar, INK);
    y += 22;
  }

  // Legend: the colours that appear, in the order above.
  y += 16;
  const names = r.strategies.flatMap((s) => s.phases.map((p) => p.name));
  const legend = [...GROUPS, OTHER].filter((g) => names.some((n) => groupOf(n) === g));
  if (r.strategies.some((s) => s.disk && s.disk.length > 1)) {
    legend.push({ label: "disk read rate (200 ms windows)", color: DISK_COLOR });
  }
  let x = MARGIN;
  for (const g of legend) {
    const w = 16 + textWidth(g.label, 12) + 18;
    if (x > MARGIN && x + w > W - MARGIN) {
      x = MARGIN;
      y += 20;
    }
    rect(x, y - 10, 11, 11, g.color);
    text(x + 16, y, g.label);
    x += w;
  }
  y += 10;

  for (const s of r.strategies) y = strategySection(s, y, items, { text, rect, line, barLabel });
  return { width: W, height: y + MARGIN, background: "#ffffff", items };
}

interface Pen {
  text: (x: number, y: number, t: string, o?: Partial<Extract<Item, { kind: "text" }>>) => void;
  rect: (x: number, y: number, w: number, h: number, color: string) => void;
  line: (x1: number, y1: number, x2: number, y2: number, color: string) => void;
  barLabel: (x: number, w: number, y: number, t: string, bar: string, color?: string) => void;
}

/** One strategy's waterfall from `y` down; returns where the next section starts. */
function strategySection(s: StrategySummary, y: number, items: Item[], pen: Pen): number {
  const { text, rect, line, barLabel } = pen;
  y += 40;
  text(MARGIN, y, `${s.strategy}: first token at ${formatMs(s.medianFirstTokenMs)}`, { size: 15, bold: true });
  for (const l of wrapText(s.setup, 12, W - 2 * MARGIN)) {
    y += 17;
    text(MARGIN, y, l, { color: MUTED });
  }
  y += 14;
  const end = Math.max(1, s.medianFirstTokenMs, ...s.phases.map((p) => p.endMs));
  const axis = niceTicks(end);
  const at = (ms: number) => LEFT + (Math.min(ms, axis.max) / axis.max) * PLOT;
  // The grid goes under the bars: keep its place in the list, fill it in once the rows' height is known.
  const gridAt = items.length;
  const top = y - 4;
  for (const p of [...s.phases].sort((a, b) => a.startMs - b.startMs)) {
    text(MARGIN + 8, y + 10, fitText(p.name, 12, LEFT - MARGIN - 20));
    const x = at(p.startMs);
    const w = Math.max(1.5, at(p.endMs) - x);
    const bar = groupOf(p.name).color;
    rect(x, y, w, 12, bar);
    const rate = rateLabel(p.ms, p.gbps);
    barLabel(x, w, y + 10, `${formatMs(p.ms)}${rate ? ` · ${rate}` : ""}${p.ok === false ? " (failed)" : ""}`, bar);
    y += 18;
  }
  // restore-cold: what the disks read, 200 ms at a time, on the same axis (the idle and the slow stretches).
  const windows = s.disk && s.disk.length > 1 ? diskWindows(s.disk, 200) : [];
  if (windows.length > 0) {
    const peak = Math.max(...windows.map((w) => w.gbps), 1e-9);
    y += 4;
    text(MARGIN + 8, y + DISK_STRIP / 2 + 4, "disk read");
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const to = windows[i + 1]?.fromMs ?? s.disk!.at(-1)!.ms;
      const h = (w.gbps / peak) * DISK_STRIP;
      rect(at(w.fromMs), y + DISK_STRIP - h, Math.max(1, at(to) - at(w.fromMs) - 1), h, DISK_COLOR);
    }
    text(RIGHT + 6, y + DISK_STRIP / 2 + 4, `peak ${peak.toFixed(2)} GB/s`, { color: MUTED });
    y += DISK_STRIP + 6;
  }
  const grid: Item[] = axis.ticks.map((t) => ({ kind: "line", x1: at(t), y1: top, x2: at(t), y2: y, color: GRID }));
  items.splice(gridAt, 0, ...grid);
  line(LEFT, y, RIGHT, y, FAINT);
  for (const t of axis.ticks) {
    line(at(t), y, at(t), y + 4, FAINT);
    text(at(t), y + 17, tickLabel(t, axis.step, axis.max), { color: MUTED, size: 11, anchor: "middle" });
  }
  return y + 20;
}

/** A "#rrggbb" colour's relative lightness, 0 (black) to 1 (white). */
function luminance(color: string): number {
  const n = parseInt(color.slice(1), 16);
  return (0.2126 * ((n >> 16) & 255) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255)) / 255;
}
