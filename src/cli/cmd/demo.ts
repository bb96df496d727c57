import type { CliCommand } from "../registry.js";
import { num } from "../args.js";
import { formatMs } from "../../text.js";

export const command: CliCommand = {
  args: [],
  help: "Captures the bundled example server (5 s cold start), restores it, and compares start times and answers.",
  options: { "startup-seconds": { type: "string", arg: "S", help: "the example server's start-up time (default 5)" } },
  async run({ values, events, config }) {
    const { demo } = await import("../../commands/demo.js");
    const r = await demo({ startupSeconds: num(values, "startup-seconds", 5, { min: 0 }), config }, events);
    const text = [
      "",
      `cold start of the example server: ${formatMs(r.coldStartMs).padStart(9)}`,
      `restore from snapshot, to ready:  ${formatMs(r.restoreMs).padStart(9)}   (${r.speedup.toFixed(1)}x faster)`,
      "",
      `asked "${r.question}"`,
      `  before capture: ${r.answerBeforeCapture.trim()}`,
      `  after restore:  ${r.answerAfterRestore.trim()}`,
      r.match ? "the answers match." : "THE ANSWERS DIFFER.",
    ].join("\n");
    return { data: r, text, exitCode: r.match ? 0 : 1 };
  },
};
