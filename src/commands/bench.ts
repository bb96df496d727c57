import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Events } from "../events.js";
import { bench, type BenchOptions, type BenchReport } from "../bench/bench.js";
import { benchTable } from "../bench/report.js";
import { waterfall } from "../bench/waterfall.js";
import { toSvg } from "../bench/svg.js";
import { toPng } from "../bench/png.js";

/** Runs the benchmark; with `out`, writes results.json, results.md, waterfall.svg and waterfall.png there. */
export async function runBench(opts: BenchOptions & { out?: string; command: string }, events: Events): Promise<{ report: BenchReport; files: string[] }> {
  events.log("cold cases drop the page cache first (sync; echo 3 > /proc/sys/vm/drop_caches): a one-off action, no setting is changed", "warn");
  const report = await bench(opts, events, opts.command);
  return { report, files: opts.out ? await writeBench(report, opts.out) : [] };
}

/** Writes results.json, results.md, waterfall.svg and waterfall.png for a report. */
async function writeBench(report: BenchReport, out: string): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const drawing = waterfall(report);
  const outputs: [string, string | Buffer][] = [
    ["results.json", JSON.stringify(report, null, 2) + "\n"],
    ["results.md", benchTable(report, "markdown") + "\n"],
    ["waterfall.svg", toSvg(drawing)],
    ["waterfall.png", toPng(drawing)],
  ];
  const files: string[] = [];
  for (const [name, data] of outputs) {
    await writeFile(join(out, name), data);
    files.push(join(out, name));
  }
  return files;
}

/** Draws an earlier run's results.json again (e.g. one brought back from a GPU machine without its pictures). */
export async function renderBench(resultsJson: string, out: string): Promise<{ report: BenchReport; files: string[] }> {
  const report = JSON.parse(await readFile(resultsJson, "utf8")) as BenchReport;
  return { report, files: await writeBench(report, out) };
}
