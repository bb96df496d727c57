import type { CliCommand } from "../registry.js";
import { StasisError } from "../../errors.js";
import { num, oneOf, str } from "../args.js";
import {
  DEFAULT_MEMORY,
  DEFAULT_PREFETCH,
  DEFAULT_WEIGHTS,
  MEMORY_MODES,
  PREFETCH_MODES,
  VERIFY_MODES,
  WEIGHTS_MODES,
} from "../../restore/modes.js";

export const command: CliCommand = {
  args: ["[snapshot]"],
  forms: ["bench --from results.json --out DIR   (draw the table and pictures of an earlier run again)"],
  help: [
    "Starts the snapshot's server each way, side by side in one run, and reports time to ready and to first token",
    "with the phases of each (table; with --out also results.json, results.md, waterfall.svg, waterfall.png):",
    "  cold          the captured command, page cache dropped, compile caches empty",
    "  warm          the captured command, compile caches filled, page cache warm",
    "  restore-hot   `stasis restore` with the snapshot's files in the page cache",
    "  restore-cold  `stasis restore` with the page cache dropped",
    "Cold cases drop the page cache (sync; echo 3 > /proc/sys/vm/drop_caches). Needs the server's port free.",
    "With restore-cold, the disk's parallel read rate over the files a restore reads before its first token is",
    "measured too (page cache dropped, parallel dd), and restore-cold is reported against those bytes at that rate.",
  ].join("\n"),
  options: {
    strategies: {
      type: "string",
      arg: "LIST",
      help: "comma-separated: cold,warm,restore-hot,restore-cold (default: all)",
    },
    repeat: { type: "string", arg: "N", help: "runs per strategy (default 3), interleaved round by round" },
    "repeat-starts": { type: "string", arg: "N", help: "runs of the slow cases, cold and warm (default: --repeat)" },
    verify: { type: "string", arg: "MODE", help: "passed to every `stasis restore` (default auto)" },
    prefetch: { type: "string", arg: "MODE", help: "passed to every `stasis restore` (default auto)" },
    memory: { type: "string", arg: "MODE", help: "passed to every `stasis restore` (default auto)" },
    weights: { type: "string", arg: "MODE", help: "passed to every `stasis restore` (default auto)" },
    via: {
      type: "string",
      arg: "cli|api",
      help: [
        "how restores are asked for: a `stasis restore` process each, timed from its spawn",
        "(cli, default), or a request to the running `stasis serve`, timed from the request (api)",
      ].join("\n"),
    },
    out: { type: "string", arg: "DIR", help: "also write results.json, results.md and the waterfall pictures here" },
    from: { type: "string", arg: "FILE", help: "draw an earlier run's results.json again (needs --out)" },
  },
  async run({ values, positionals, events, config }) {
    const from = str(values, "from");
    if (from) {
      const out = str(values, "out");
      if (!out) throw new StasisError("E_USAGE", "--from needs --out DIR");
      const { renderBench } = await import("../../commands/bench.js");
      const { report, files } = await renderBench(from, out, events);
      const { benchTable } = await import("../../bench/report.js");
      return { data: report, text: `${benchTable(report, "text")}\n\nwrote ${files.join(", ")}` };
    }
    const snapshot = positionals[0];
    if (snapshot === undefined)
      throw new StasisError("E_USAGE", "missing <snapshot>", { hint: "usage: stasis bench <snapshot> [options]" });
    const { STRATEGIES } = await import("../../bench/strategies.js");
    const wanted = (str(values, "strategies") ?? STRATEGIES.join(",")).split(",").map((s) => s.trim());
    for (const s of wanted) {
      if (!(STRATEGIES as readonly string[]).includes(s))
        throw new StasisError("E_USAGE", `--strategies: unknown strategy "${s}"`, {
          hint: `choose from ${STRATEGIES.join(", ")}`,
        });
    }
    const { runBench } = await import("../../commands/bench.js");
    const { benchTable } = await import("../../bench/report.js");
    const { report, files } = await runBench(
      {
        snapshot,
        strategies: wanted as (typeof STRATEGIES)[number][],
        repeat: num(values, "repeat", 3, { min: 1 }),
        repeatStarts: values["repeat-starts"] === undefined ? undefined : num(values, "repeat-starts", 1, { min: 1 }),
        verify: oneOf(values, "verify", VERIFY_MODES, "auto"),
        prefetch: oneOf(values, "prefetch", PREFETCH_MODES, DEFAULT_PREFETCH),
        memory: oneOf(values, "memory", MEMORY_MODES, DEFAULT_MEMORY),
        weights: oneOf(values, "weights", WEIGHTS_MODES, DEFAULT_WEIGHTS),
        via: oneOf(values, "via", ["cli", "api"] as const, "cli"),
        out: str(values, "out"),
        config,
        command: ["stasis", "bench", ...process.argv.slice(3)].join(" "),
      },
      events,
    );
    const text = [
      benchTable(report, "text"),
      report.speedup ? `\ncold start / restore-hot (first token): ${report.speedup.toFixed(1)}x` : "",
      files.length ? `\nwrote ${files.join(", ")}` : "",
    ].join("");
    return { data: report, text };
  },
};
