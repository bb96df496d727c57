import type { CliCommand } from "../registry.js";
import { num } from "../args.js";

export const command: CliCommand = {
  args: ["[id...]"],
  help: 'A running `stasis serve` does the stopping when there is one (STASIS_NO_DAEMON=1: never); --json says which ("via").',
  options: {
    all: { type: "boolean", help: "stop every instance" },
    grace: { type: "string", arg: "S", help: "seconds between SIGTERM and SIGKILL (default 10)" },
  },
  async run({ values, positionals }) {
    const opts = { ids: positionals, all: Boolean(values.all), graceMs: num(values, "grace", 10, { min: 0 }) * 1000 };
    const { stop, checkStopArgs } = await import("../../commands/stop.js");
    checkStopArgs(opts);
    const { daemonOr, stopViaDaemon } = await import("../../serve/client.js");
    const { value: r, via } = await daemonOr(
      () => stopViaDaemon(opts),
      () => stop(opts),
    );
    return {
      data: { stopped: r, via },
      text: r.length ? r.map((x) => `${x.id}: ${x.result}`).join("\n") : "nothing to stop",
    };
  },
};
