import type { CliCommand } from "../registry.js";
import { num } from "../args.js";
import { table } from "../../text.js";

export const command: CliCommand = {
  args: ["<name>"],
  help: [
    "Has the running `stasis serve` restore the snapshot ahead of demand up to, not including, what needs the GPU:",
    "CRIU's restore with the tree left stopped. It holds host memory and the snapshot's address, nothing on the GPU.",
    "A restore of the snapshot through the daemon then takes it (CUDA restore, engine wake, canary) and a",
    "replacement is parked once the address is free again. `stasis ps` lists parked instances; `stasis stop ID`",
    "ends one. --count 0 ends them. See docs/parking.md.",
  ].join("\n"),
  options: {
    count: {
      type: "string",
      arg: "N",
      help: "how many to keep parked (default 1; 0 ends them; more than 1 is refused)",
    },
  },
  async run({ values, positionals }) {
    const { park } = await import("../../commands/park.js");
    const r = await park({ name: positionals[0]!, count: num(values, "count", 1, { min: 0 }) });
    if (r.parked.length === 0) return { data: r, text: `no parked instances of "${positionals[0]}"` };
    const text = table([
      ["id", "snapshot", "pid", "url", "kind", "parked in"],
      ...r.parked.map((p) => [
        p.id,
        p.snapshot,
        String(p.pid),
        p.url,
        p.hibernated ? "hibernated" : "parked",
        `${p.parkMs.toFixed(0)} ms`,
      ]),
    ]);
    return { data: r, text };
  },
};
