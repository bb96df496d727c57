import type { CliCommand } from "../registry.js";
import { num } from "../args.js";

export const command: CliCommand = {
  usage: "stop <id...> [--all] [--grace S] [--json]",
  help: "  --grace S   seconds between SIGTERM and SIGKILL (default 10)\n  --all       stop every instance",
  options: { all: { type: "boolean" }, grace: { type: "string" } },
  async run({ values, positionals }) {
    const { stop } = await import("../../commands/stop.js");
    const r = await stop({ ids: positionals, all: Boolean(values.all), graceMs: num(values, "grace", 10, { min: 0 }) * 1000 });
    return { data: r, text: r.length ? r.map((x) => `${x.id}: ${x.result}`).join("\n") : "nothing to stop" };
  },
};
