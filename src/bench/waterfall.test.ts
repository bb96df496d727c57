import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waterfall, DISK_COLOR } from "./waterfall.js";
import { toSvg } from "./svg.js";
import { loadResvg, renderOptions, toPng } from "./png.js";
import { readReport } from "./read-report.js";
import type { BenchReport } from "./bench.js";
import { textWidth, type Drawing, type Item } from "./drawing.js";
import { REPO } from "../testing/cli.js";

type Text = Extract<Item, { kind: "text" }>;
const texts = (d: Drawing) => d.items.filter((i): i is Text => i.kind === "text").map((i) => i.text);
const phase = (name: string, startMs: number, endMs: number, gbps?: number) => ({
  name,
  startMs,
  endMs,
  ms: endMs - startMs,
  ok: true,
  ...(gbps === undefined ? {} : { gbps }),
});

type Summary = BenchReport["strategies"][number];
function report(strategies: Partial<Summary>[], extra: Partial<BenchReport> = {}): BenchReport {
  return {
    date: "2026-11-27T12:00:00Z",
    machine: { host: "h", cpus: 2, cpuModel: "cpu", kernel: "k" },
    command: "c",
    snapshot: "s",
    repeat: 1,
    verify: "auto",
    strategies: strategies.map((s) => ({
      strategy: "restore-hot",
      setup: "hot",
      runs: [],
      medianReadyMs: 0,
      medianFirstTokenMs: 1000,
      phases: [],
      ...s,
    })) as BenchReport["strategies"],
    ...extra,
  };
}

const disk = [0, 100, 200, 300, 400, 500, 600, 700, 800].map((ms, k) => ({
  ms,
  bytes: k <= 4 ? k * 100e6 : 400e6 + (k - 4) * 200e6,
  reads: k * 10,
  inFlight: 16,
}));
const coldRestore = {
  strategy: "restore-cold" as const,
  setup: "cold",
  medianFirstTokenMs: 800,
  phases: [phase("criu-restore", 0, 400, 1.2), phase("first-token", 790, 800)],
  disk,
};

test("the waterfall draws restore-cold's disk reads under its phases, on the same time axis", () => {
  const d = waterfall(report([coldRestore]));
  assert.ok(texts(d).includes("disk read"), "a disk strip");
  // The disk's bars, not its legend's swatch (11 x 11).
  const bars = d.items.filter((i) => i.kind === "rect" && i.color === DISK_COLOR && i.h !== 11) as {
    x: number;
    h: number;
  }[];
  assert.equal(bars.length, 4, "200 ms windows over 800 ms");
  assert.ok(bars[2]!.h > bars[0]!.h * 1.9, "the faster second half is taller (2 GB/s against 1)");
  assert.ok(
    bars.every((b, i) => i === 0 || b.x > bars[i - 1]!.x),
    "left to right in time",
  );
  assert.ok(texts(d).some((t) => /peak 2\.00 GB\/s/.test(t)));
  const without = waterfall(report([{ ...coldRestore, disk: undefined }]));
  assert.ok(!texts(without).includes("disk read"), "no samples, no strip");
  assert.ok(!texts(without).some((t) => t.startsWith("disk read rate")), "and no legend entry for it");
});

test("a legend names each colour the phases use, and only those", () => {
  const phases = [phase("criu-restore", 0, 400), phase("cuda-restore", 400, 500), phase("gpu-plan", 0, 20)];
  const d = waterfall(report([{ phases }]));
  const t = texts(d);
  for (const label of ["CRIU", "CUDA", "other"]) assert.ok(t.includes(label), label);
  for (const label of ["weights, wake", "prefetch, verify"]) assert.ok(!t.includes(label), label);
  const swatch = (label: string) => {
    const at = d.items.findIndex((i) => i.kind === "text" && i.text === label);
    return (d.items[at - 1] as { color: string }).color;
  };
  const bar = (y: number) => d.items.find((i) => i.kind === "rect" && i.h === 12 && Math.abs(i.y - y) < 1);
  const criuRow = d.items.find((i): i is Text => i.kind === "text" && i.text === "criu-restore")!;
  assert.equal((bar(criuRow.y - 10) as { color: string }).color, swatch("CRIU"), "the bar has its legend's colour");
});

test("the summary says how many times faster than a cold start each strategy is", () => {
  const t = texts(
    waterfall(
      report([
        { strategy: "cold", medianFirstTokenMs: 39090 },
        { strategy: "restore-hot", medianFirstTokenMs: 614 },
      ]),
    ),
  );
  assert.ok(t.includes("39.09 s"), t.join("|"));
  assert.ok(t.includes("614 ms · 63.7x faster than cold"), t.join("|"));
  assert.ok(!texts(waterfall(report([{}]))).some((x) => x.includes("faster")), "no cold start, no speed-up");
});

test("the header says which engine and model ran, where the results recorded them", () => {
  const r = report([{}], {
    engine: { adapter: "vllm", name: "vllm", version: "0.26.0" },
    model: { id: "/opt/model", shape: { architectures: ["LlamaForCausalLM"] }, weightsBytes: 6.43e9, imageBytes: 1e9 },
  });
  const t = texts(waterfall(r));
  assert.ok(
    t.some((x) => x.startsWith("vllm 0.26.0 (vllm adapter), model /opt/model")),
    t.join("|"),
  );
  assert.ok(!texts(waterfall(report([{}]))).some((t) => t.includes("adapter")), "older results: no such line");
});

test("no rate is shown for a phase under 10 ms (3 ms of adopt-weights read as 2025 GB/s)", () => {
  const phases = [phase("adopt-weights", 600, 603, 2025.1), phase("stage-weights", 0, 121, 53)];
  const t = texts(waterfall(report([{ phases }])));
  assert.ok(t.includes("3 ms"), t.join("|"));
  assert.ok(t.includes("121 ms · 53.0 GB/s"), t.join("|"));
  assert.ok(!t.some((x) => x.includes("2025")));
});

/** Renders `svg` without its background and returns what resvg finds drawn: the glyphs as they are, not as guessed. */
async function inkBox(svg: string) {
  const Resvg = await loadResvg();
  const b = new Resvg(svg.replace(/<rect width="100%" height="100%"[^>]*\/>/, ""), renderOptions(1)).getBBox();
  assert.ok(b);
  return { x0: b.x, y0: b.y, x1: b.x + b.width, y1: b.y + b.height };
}

test("titles are not clipped: every title, label and tick stays inside the picture, long ones wrapped", async () => {
  const setup =
    "snapshot files and its working set in the page cache, its weights pinned by the daemon, a request to " +
    "`stasis serve`, and a few more words to make this line wrap twice over on a picture 1100 pixels wide";
  const r = report(
    [
      {
        strategy: "cold",
        medianFirstTokenMs: 39090,
        setup,
        phases: [phase("ready", 0, 39060), phase("first-token", 39060, 39090)],
      },
      {
        strategy: "restore-hot",
        medianFirstTokenMs: 614,
        setup,
        phases: [phase("a-phase-name-far-too-long-for-its-column-of-names", 0, 5), phase("stage-weights", 0, 614, 53)],
      },
      coldRestore,
    ],
    {
      snapshot: "a-snapshot-with-a-long-name",
      machine: { host: "h", cpus: 2, cpuModel: "cpu", kernel: "k", gpu: "NVIDIA H100 80GB HBM3" },
    },
  );
  const d = waterfall(r);
  const box = await inkBox(toSvg(d));
  assert.ok(box.x0 >= 0 && box.y0 >= 0, `ink starts at ${box.x0}, ${box.y0}`);
  assert.ok(box.x1 <= d.width && box.y1 <= d.height, `ink ends at ${box.x1}, ${box.y1} in ${d.width} x ${d.height}`);
  assert.ok(
    texts(d).some((t) => t.startsWith("`stasis serve`") || t.includes("wrap twice")),
    "the setup line wrapped",
  );
  assert.ok(
    texts(d).some((t) => t.endsWith("…")),
    "the long phase name cut with an ellipsis",
  );
});

test("the committed H100 bench's picture fits inside itself", async () => {
  const path = join(REPO, "bench/results/2026-11-27-h100/pipeline-3b-43-judged/bench-servepin/results.json");
  const d = waterfall(await readReport(path));
  const box = await inkBox(toSvg(d));
  assert.ok(box.x0 >= 0 && box.y0 >= 0 && box.x1 <= d.width && box.y1 <= d.height, JSON.stringify(box));
});

test("text keeps its descenders (the 5x7 font drew 'stage-weights' as 'stase-weishts')", async () => {
  const d: Drawing = {
    width: 120,
    height: 30,
    background: "#ffffff",
    items: [{ kind: "text", x: 4, y: 20, text: "stage-weights", size: 12, color: "#000000" }],
  };
  const Resvg = await loadResvg();
  const img = new Resvg(toSvg(d), renderOptions(1)).render();
  const dark = (y: number) => {
    let n = 0;
    for (let x = 0; x < img.width; x++) if (img.pixels[(y * img.width + x) * 4]! < 128) n++;
    return n;
  };
  assert.ok(dark(22) + dark(23) > 0, "ink below the baseline (the g's tails)");
  assert.ok(dark(12) > 0, "and above it");
  assert.equal(dark(27), 0, "nothing far below");
});

test("labels are laid out by the font's own widths: at most 3 px wider than the ink resvg draws", async () => {
  const labels = [
    ["stage-weights", false],
    ["614 ms · 63.7x faster than cold", false],
    ["MMMM", true],
  ] as const;
  for (const [t, bold] of labels) {
    const d: Drawing = {
      width: 600,
      height: 30,
      background: "#ffffff",
      items: [{ kind: "text", x: 10, y: 20, text: t, size: 12, color: "#000000", bold }],
    };
    const ink = await inkBox(toSvg(d));
    const w = textWidth(t, 12, bold);
    // The ink leaves out the first glyph's left bearing and the last one's right bearing: a little narrower.
    const drawn = ink.x1 - ink.x0;
    assert.ok(w >= drawn && w - drawn <= 3, `${t}: ${w.toFixed(1)} px laid out, ${drawn.toFixed(1)} drawn`);
  }
});

test("toPng draws the SVG at twice its size", async () => {
  const png = await toPng(toSvg({ width: 40, height: 20, background: "#ffffff", items: [] }));
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  assert.equal(png.readUInt32BE(16), 80);
  assert.equal(png.readUInt32BE(20), 40);
});

test("the SVG escapes text", () => {
  const items: Item[] = [{ kind: "text", x: 0, y: 0, text: "a<b&c", size: 12, color: "#000000" }];
  const svg = toSvg({ width: 10, height: 10, background: "#ffffff", items });
  assert.match(svg, /a&lt;b&amp;c/);
});

test("--from refuses a file that is missing, not JSON, or not a bench report, saying which", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-read-report-"));
  await assert.rejects(
    readReport(join(dir, "nope.json")),
    (e: { code: string; message: string }) => e.code === "E_FILE_NOT_FOUND" && /ENOENT/.test(e.message),
  );
  writeFileSync(join(dir, "bad.json"), "{");
  await assert.rejects(
    readReport(join(dir, "bad.json")),
    (e: { code: string; message: string }) => e.code === "E_USAGE" && /not JSON/.test(e.message),
  );
  writeFileSync(join(dir, "other.json"), JSON.stringify({ rows: [] }));
  await assert.rejects(
    readReport(join(dir, "other.json")),
    (e: { code: string; message: string; hint: string }) =>
      e.code === "E_USAGE" && /not a stasis bench report: date/.test(e.message) && /stasis bench --out/.test(e.hint),
  );
});
