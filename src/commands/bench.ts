import { mkdir, writeFile } from "node:fs/promises";
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
  const files: string[] = [];
  if (opts.out) {
    await mkdir(opts.out, { recursive: true });
    const drawing = waterfall(report);
    const outputs: [string, string | Buffer][] = [
      ["results.json", JSON.stringify(report, null, 2) + "\n"],
      ["results.md", benchTable(report, "markdown") + "\n"],
      ["waterfall.svg", toSvg(drawing)],
      ["waterfall.png", toPng(drawing)],
    ];
    for (const [name, data] of outputs) {
      await writeFile(join(opts.out, name), data);
      files.push(join(opts.out, name));
    }
  }
  return { report, files };
}
