import type { CliCommand } from "../registry.js";
import { StasisError } from "../../errors.js";

export const command: CliCommand = {
  usage: "rm <name...> [--json]",
  options: {},
  async run({ positionals }) {
    if (positionals.length === 0) throw new StasisError("E_USAGE", "name the snapshots to remove", { hint: "usage: stasis rm <name...>" });
    const { rm } = await import("../../commands/rm.js");
    const r = await rm({ names: positionals });
    const text = [
      `removed ${r.removed.join(", ")}`,
      r.instancesStillRunning.length ? `instances restored from it keep running: ${r.instancesStillRunning.join(", ")}` : "",
      ...r.warnings.map((w) => `warning: ${w}`),
    ]
      .filter(Boolean)
      .join("\n");
    return { data: r, text };
  },
};
