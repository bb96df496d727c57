import type { CliCommand } from "../registry.js";

export const command: CliCommand = {
  args: ["<name...>"],
  options: {},
  async run({ positionals }) {
    const { rm } = await import("../../commands/rm.js");
    const r = await rm({ names: positionals });
    const text = [
      `removed ${r.removed.join(", ")}`,
      r.instancesStillRunning.length
        ? `instances restored from it keep running: ${r.instancesStillRunning.join(", ")}`
        : "",
      ...r.warnings.map((w) => `warning: ${w}`),
    ]
      .filter(Boolean)
      .join("\n");
    return { data: r, text };
  },
};
