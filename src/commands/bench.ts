import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { bench, type BenchOptions, type BenchReport } from "../bench/bench.js";
import { benchTable } from "../bench/report.js";
import { readReport } from "../bench/read-report.js";
import { waterfall } from "../bench/waterfall.js";
import { toSvg } from "../bench/svg.js";
import { toPng } from "../bench/png.js";

/** Runs the benchmark; with `out`, writes results.json, results.md, waterfall.svg and waterfall.png there. */
export async function runBench(
  opts: BenchOptions & { out?: string; command: string },
  events: Events,
): Promise<{ report: BenchReport; files: string[] }> {
  events.log(
    "cold cases drop the page cache first (sync; echo 3 > /proc/sys/vm/drop_caches): a one-off action, no setting is changed",
    "warn",
  );
  const report = await bench(opts, events, opts.command);
  return { report, files: opts.out ? await writeBench(report, opts.out, events) : [] };
}

/** Writes results.json, results.md, waterfall.svg and waterfall.png for a report. */
async function writeBench(report: BenchReport, out: string, events: Events): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const svg = toSvg(waterfall(report));
  const outputs: [string, string | Buffer][] = [
    ["results.json", JSON.stringify(report, null, 2) + "\n"],
    ["results.md", benchTable(report, "markdown") + "\n"],
    ["waterfall.svg", svg],
  ];
  const files: string[] = [];
  for (const [name, data] of outputs) {
    await writeFile(join(out, name), data);
    files.push(join(out, name));
  }
  // The PNG last, and its failure a warning: a bench's measurements are worth keeping without their picture
  // (`stasis bench --from results.json` draws it again once the renderer is installed).
  try {
    await writeFile(join(out, "waterfall.png"), await toPng(svg));
    files.push(join(out, "waterfall.png"));
  } catch (err) {
    if (!(err instanceof StasisError)) throw err;
    events.log(`waterfall.png not written: ${err.message} (${err.hint})`, "warn");
  }
  return files;
}

/** Draws an earlier run's results.json again (e.g. one brought back from a GPU machine without its pictures). */
export async function renderBench(
  resultsJson: string,
  out: string,
  events: Events,
): Promise<{ report: BenchReport; files: string[] }> {
  const report = await readReport(resultsJson);
  return { report, files: await writeBench(report, out, events) };
}
