import type { CliCommand } from "../registry.js";
import { num } from "../args.js";

export const command: CliCommand = {
  args: ["[id...]"],
  options: {
    all: { type: "boolean", help: "stop every instance" },
    grace: { type: "string", arg: "S", help: "seconds between SIGTERM and SIGKILL (default 10)" },
  },
  async run({ values, positionals }) {
    const { stop } = await import("../../commands/stop.js");
    const r = await stop({
      ids: positionals,
      all: Boolean(values.all),
      graceMs: num(values, "grace", 10, { min: 0 }) * 1000,
    });
    return {
      data: { stopped: r },
      text: r.length ? r.map((x) => `${x.id}: ${x.result}`).join("\n") : "nothing to stop",
    };
  },
};
